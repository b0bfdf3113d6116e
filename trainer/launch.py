"""Several processes: run_training relaunches itself under torchrun, handing the children one launch file.

The launch file (`<output_dir>/.launch_config-*.json`, removed when the run ends) holds the
resolved config and the `RunOptions` — everything `run_training` resolved in the parent, the
deadline included, so every rank shares the parent's clock. The children run
`python -m trainer.train_lm --launch FILE`; nothing else travels on their command line.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Optional

from fastpack.atomic import write_json_atomic
from fastpack.errors import UserError
from fastpack.jsonfile import read_json

from trainer.config import RunConfig

LAUNCH_PREFIX = ".launch_config-"


@dataclass(frozen=True)
class RunOptions:
    """What a run does besides its config: where it reads and writes, what it resumes, when it stops."""

    root: Path
    packed_dir: Path
    output_dir: Path
    resume: Optional[str]  # "auto", a checkpoint path or folder, or None (fresh start)
    stop_at_step: Optional[int] = None
    deadline: Optional[float] = None  # a time.time() value
    budget_total: Optional[float] = None  # the deadline's length in seconds (sizes the safety margin)
    show_progress: bool = False
    device: Optional[str] = None
    checksums: tuple = ()  # checkpoint hashes the launching process took (checkpoint.known_checksums)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("root", "packed_dir", "output_dir"):
            out[key] = str(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunOptions":
        paths = {key: Path(data[key]) for key in ("root", "packed_dir", "output_dir")}
        return cls(**{**data, **paths})


def write_launch_file(config: RunConfig, options: RunOptions) -> Path:
    """A temp JSON in the output folder with the config and the options (the caller removes it)."""
    options.output_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=LAUNCH_PREFIX, suffix=".json", dir=options.output_dir)
    os.close(fd)
    write_json_atomic(name, {"config": config.to_dict(), "options": options.to_dict()})
    return Path(name)


def read_launch_file(path: str | Path) -> tuple[RunConfig, RunOptions]:
    data = read_json(path, "launch file not found")
    return RunConfig.from_dict(data["config"], source=str(path)), RunOptions.from_dict(data["options"])


def preflight(config: RunConfig, options: RunOptions) -> None:
    """Check what a user can get wrong here, where the error is one clean line, not torchrun's report."""
    import torch

    from trainer import checkpoint as ckpt
    from trainer.plan import prepare
    from trainer.precision import precision_for
    from trainer.resume import resolve_resume

    plan = prepare(config, root=options.root, packed_dir=options.packed_dir, log=lambda message: None)  # the children say the notes
    if torch.cuda.is_available() and options.device != "cpu":
        precision_for(config.training.precision, torch.device("cuda", 0))
    resume_path = resolve_resume(options.resume, options.output_dir / ckpt.CHECKPOINT_DIR, move_bad=False)  # rank 0 says it
    if resume_path is not None:
        ckpt.check_shape(ckpt.load_checkpoint(resume_path, mmap=True), plan.model_args.shape_dict(), resume_path)


def relaunch(config: RunConfig, options: RunOptions, nproc: int, *, summary_name: str,
             log: Callable[[str], None]) -> dict[str, Any]:
    """Run the training under torchrun with `nproc` processes; the summary its rank 0 wrote."""
    from trainer import distributed as D
    from trainer.checkpoint import known_checksums

    preflight(config, options)
    launch_file = write_launch_file(config, replace(options, checksums=known_checksums()))
    summary_path = options.output_dir / summary_name
    try:
        log(f"launching {nproc} processes under torchrun")
        summary_path.unlink(missing_ok=True)
        # No --nproc here: under torchrun it is not needed, and torchrun's own parser would take it for --nproc-per-node.
        code = D.relaunch(nproc, "trainer.train_lm", ["--launch", str(launch_file)])
    finally:
        launch_file.unlink(missing_ok=True)
    if code != 0:
        if code == 2:
            raise UserError("training under torchrun stopped on an error (exit 2); its message is above")
        raise RuntimeError(f"training under torchrun failed with exit code {code}")
    return json.loads(summary_path.read_text(encoding="utf-8"))
