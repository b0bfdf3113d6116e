"""Train the GPT on packed windows: `run_training(...)` for callers, `python -m trainer.train_lm` for people.

    python -m trainer.train_lm --config ROOT/config/training_config.json \\
        [--packed-dir DIR] [--output-dir DIR] [--preset tiny|small|base] [--max-steps N] \\
        [--resume auto|PATH|none] [--time-budget 11h30m] [--checkpoint-minutes M] \\
        [--nproc auto|N] [--precision auto|fp32|fp16|bf16] [--compile] [--show-progress] \\
        [--set section.key=value ...]

The loop, top to bottom: resume -> (forward/backward over grad_accum micro-batches) -> clip ->
step -> log -> eval + samples -> checkpoint, with a stop check before every step (time budget,
`--stop-at-step`). Under torchrun every rank runs it; rank 0 alone writes.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch.utils.data import DataLoader

from trainer.config import RunConfig as Config, config_root, find_config, load_config, save_config
from fastpack.errors import UserError, run_main
from fastpack.tokenizer_info import MODEL_FILE, TokenizerInfo, load_tokenizer_info

from trainer import checkpoint as ckpt
from trainer import distributed as D
from trainer.budget import Budget, format_duration, parse_duration
from trainer.data import PackedDataset, ResumableBatchSampler, Shard, check_split, eval_batches, find_split
from trainer.model import GPT, IGNORE_INDEX, ModelArgs, generate, resolve_model_args
from trainer.outputs import (LOSS_PNG, METRICS, RUN_CONFIG, SAMPLES, SUMMARY, MetricsLog, append_samples, perplexity,
                             plot_loss, prepare_plotting, write_partial_summary, write_summary)
from trainer.precision import Precision, precision_for
from trainer.schedule import CosineSchedule

# Peak dense tensor throughput (FLOP/s) for model-FLOPs utilisation; fp16/bf16 tensor cores.
_PEAK_FLOPS = {"T4": 65e12, "P100": 18.7e12, "V100": 125e12, "A10": 125e12, "L4": 121e12, "A100": 312e12,
               "H100": 989e12, "H200": 989e12}


@dataclass
class Plan:
    """What a run needs, checked before any process is started: tokenizer, model shape, splits."""

    tokenizer: TokenizerInfo
    tokenizer_dir: Path
    model_args: ModelArgs
    train: list[Shard]
    val: Optional[list[Shard]]
    test: Optional[list[Shard]]


def prepare(config: Config, *, root: Path, packed_dir: Path, log: Callable[[str], None] = print) -> Plan:
    """Load the tokenizer info, resolve the model shape, find and check the packed splits (UserError on any problem)."""
    tokenizer_dir = config.paths.resolve(root, "tokenizer_dir")
    try:
        info = load_tokenizer_info(tokenizer_dir)
    except UserError as exc:
        raise UserError(f"{exc} (paths.tokenizer_dir of root {root})") from None
    splits = {name: find_split(packed_dir, name, required=name == "train") for name in ("train", "val", "test")}
    # The context is the windows' length, from the train split's meta; a length set in the config must match it.
    context_len = config.packing.seq_len or splits["train"][0].seq_len
    args = resolve_model_args(config.model, vocab_size=info.vocab_size, context_len=context_len)
    for shards in splits.values():
        if shards is not None:
            check_split(shards, seq_len=args.context_len, vocab_size=args.vocab_size, log=log)
    if splits["val"] is None:
        log(f"note: no packed val split in {packed_dir}: no validation loss and no best checkpoint")
    return Plan(tokenizer=info, tokenizer_dir=tokenizer_dir, model_args=args, **splits)


def run_training(
    config: Config,
    *,
    root: str | Path,
    packed_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
    resume: str | Path | None = "auto",
    max_steps: Optional[int] = None,
    stop_at_step: Optional[int] = None,
    time_budget: str | float | None = None,
    deadline: Optional[float] = None,
    budget_total: Optional[float] = None,
    show_progress: bool = False,
    nproc: int | str = "auto",
    device: Optional[str] = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (or continue training) and return the summary (also written to output_dir/summary.json).

    `resume`: "auto" (the newest valid checkpoint in output_dir/checkpoints, else a fresh start),
    a checkpoint path (or a folder holding checkpoints), or None/"none" (fresh; an error when the
    output folder already holds checkpoints). `max_steps` sets training.max_steps, the schedule's
    length; `stop_at_step` stops early (with a checkpoint) without changing the schedule.
    `time_budget` ("11h30m" or seconds; default training.time_budget) counts from this call;
    `deadline` (a `time.time()` value; `budget_total` its length, for the safety margin) overrides
    it. `nproc` > 1 (or "auto" with several GPUs) relaunches under torchrun and returns the summary
    its rank 0 wrote. `device`: "cpu", "cuda", "cuda:1" (default: cuda when available). `log`
    receives every line rank 0 would print.
    """
    root = Path(root).resolve()
    if max_steps is not None:
        config = config.replace("training", max_steps=max_steps)
    packed_dir = Path(packed_dir) if packed_dir is not None else config.paths.resolve(root, "packed_dir")
    output_dir = Path(output_dir) if output_dir is not None else config.paths.resolve(root, "output_dir")
    if deadline is None:
        budget_total = parse_duration(time_budget if time_budget is not None else config.training.time_budget,
                                      "--time-budget" if time_budget is not None else "training.time_budget")
        deadline = time.time() + budget_total if budget_total is not None else None
    resume = None if resume in (None, "", "none") else resume
    n = D.resolve_nproc(nproc, device)
    if n > 1 and not D.under_torchrun():
        return _relaunch(config, n, root=root, packed_dir=packed_dir, output_dir=output_dir, resume=resume,
                         stop_at_step=stop_at_step, deadline=deadline, budget_total=budget_total,
                         show_progress=show_progress, device=device, log=log)
    return Trainer(config, root=root, packed_dir=packed_dir, output_dir=output_dir, resume=resume,
                   stop_at_step=stop_at_step, deadline=deadline, budget_total=budget_total,
                   show_progress=show_progress, device=device, log=log).run()


def _relaunch(config: Config, nproc: int, *, root, packed_dir, output_dir, resume, stop_at_step, deadline,
              budget_total, show_progress, device, log) -> dict[str, Any]:
    # Check everything a user can get wrong here, where the error is one clean line, not torchrun's report.
    plan = prepare(config, root=root, packed_dir=packed_dir, log=lambda message: None)  # the children say the notes
    if torch.cuda.is_available() and device != "cpu":
        precision_for(config.training.precision, torch.device("cuda", 0))
    resume_path = _resolve_resume(resume, output_dir / ckpt.CHECKPOINT_DIR)
    if resume_path is not None:
        ckpt.check_shape(ckpt.load_checkpoint(resume_path, mmap=True), plan.model_args.shape_dict(), resume_path)
    output_dir.mkdir(parents=True, exist_ok=True)
    fd, config_file = tempfile.mkstemp(prefix=".launch_config-", suffix=".json", dir=output_dir)
    os.close(fd)
    try:
        save_config(config, config_file)
        args = ["--config", config_file, "--root", str(root), "--packed-dir", str(packed_dir),
                "--output-dir", str(output_dir), "--resume", str(resume or "none")]
        # No --nproc here: under torchrun it is not needed, and torchrun's own parser would take it for --nproc-per-node.
        for flag, value in (("--stop-at-step", stop_at_step), ("--deadline", deadline),
                            ("--budget-total", budget_total), ("--device", device)):
            if value is not None:
                args += [flag, str(value)]
        if show_progress:
            args.append("--show-progress")
        log(f"launching {nproc} processes under torchrun")
        (output_dir / SUMMARY).unlink(missing_ok=True)
        code = D.relaunch(nproc, "trainer.train_lm", args)
    finally:
        Path(config_file).unlink(missing_ok=True)
    if code != 0:
        if code == 2:
            raise UserError("training under torchrun stopped on an error (exit 2); its message is above")
        raise RuntimeError(f"training under torchrun failed with exit code {code}")
    return json.loads((output_dir / SUMMARY).read_text(encoding="utf-8"))


def _resolve_resume(resume: str | Path | None, ckpt_dir: Path) -> Optional[Path]:
    """The checkpoint to start from, or None for a fresh start."""
    if resume is None:
        existing = ckpt.find_latest_checkpoint([ckpt_dir])
        if existing is not None:
            raise UserError(
                f"{ckpt_dir} already holds checkpoints (newest: {existing.name}); "
                "pass --resume auto to continue them, or choose another --output-dir"
            )
        return None
    if str(resume) == "auto":
        return ckpt.find_latest_checkpoint([ckpt_dir])
    path = Path(resume)
    if path.is_dir():
        found = ckpt.find_latest_checkpoint([path])
        if found is None:
            raise UserError(f"{path}: no valid checkpoint in this folder")
        return found
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    return path


def _param_groups(model: GPT, weight_decay: float) -> list[dict]:
    # Decay only matrices of linear layers; norms and the (tied) embedding keep their scale.
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.dim() >= 2 and not name.startswith("embed.") else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


@dataclass
class Progress:
    """Where training stands: what a checkpoint restores besides the model, optimizer, scaler and RNG."""

    step: int = 0
    data_position: int = 0  # samples of the endless training stream consumed (all ranks together)
    tokens_seen: int = 0
    best_val: float = math.inf
    train_seconds: float = 0.0  # time in training steps, summed over sessions
    last_val: Optional[float] = None
    last_loss: Optional[float] = None


class Trainer:
    """One run of the loop on this process (a rank under torchrun, or the only process)."""

    def __init__(self, config: Config, *, root: Path, packed_dir: Path, output_dir: Path, resume, stop_at_step,
                 deadline, budget_total, show_progress, device, log) -> None:
        self.config, self.root, self.packed_dir, self.output_dir = config, root, packed_dir, output_dir
        self.resume, self.stop_at_step, self.deadline, self.budget_total = resume, stop_at_step, deadline, budget_total
        self.show_progress, self.requested_device, self._log = show_progress, device, log
        self.ckpt_dir = output_dir / ckpt.CHECKPOINT_DIR
        self.bar = None

    def log(self, message: str) -> None:
        if self.dist.is_main:
            if self.bar is not None:
                self.bar.write(message)
            else:
                self._log(message)

    def run(self) -> dict[str, Any]:
        owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
        self.dist = D.init_distributed(self.requested_device)
        try:
            self._setup()
            stop_reason = self._train()
            summary = self._finish(stop_reason)
            # Leave together: a rank tearing down gloo while rank 0 still writes can abort at exit.
            D.barrier(self.dist)
            return summary
        finally:
            if self.bar is not None:
                self.bar.close()
            if owns_group:
                D.close_distributed()

    # --- setup ---------------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg, t, info = self.config, self.config.training, self.dist
        self.session_start = time.time()
        self.plan = prepare(cfg, root=self.root, packed_dir=self.packed_dir, log=self.log)
        meta = self.plan.train[0].meta
        self.eos_id = meta.eos_id
        # A prompt starts a document: after bos when the data has one, else after the eos ending the previous one.
        self.prompt_prefix = [meta.bos_id] if meta.bos_id is not None else ([self.eos_id] if self.eos_id is not None else [])
        self.precision: Precision = precision_for(t.precision, info.device)
        if self.precision.note:
            self.log(f"note: {self.precision.note}")
        if info.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores where there are any
            torch.backends.cudnn.allow_tf32 = True

        torch.manual_seed(t.seed)  # same initial weights on every rank
        self.raw_model = GPT(self.plan.model_args).to(info.device)
        self.optimizer = torch.optim.AdamW(_param_groups(self.raw_model, t.weight_decay), lr=t.lr,
                                           betas=(t.beta1, t.beta2), fused=info.device.type == "cuda")
        self.scaler = self.precision.grad_scaler()
        self.schedule = CosineSchedule(t.lr, t.min_lr, t.warmup_steps, t.max_steps)
        self.progress = Progress()
        # Rank 0 picks the checkpoint, every rank loads it.
        path = _resolve_resume(self.resume, self.ckpt_dir) if info.is_main else None
        self.resumed_from = D.broadcast_object(str(path) if path else None, info)
        if self.resumed_from:
            self._restore(self.resumed_from)
        else:
            torch.manual_seed(t.seed + 1 + info.rank)  # dropout differs across ranks

        # Data: the endless shuffled stream for training, fixed evenly spaced sets for evaluation.
        train_ds = PackedDataset(self.plan.train, mask_overlap=not t.loss_on_overlap, document_attention=t.document_attention)
        sampler = ResumableBatchSampler(len(train_ds), t.batch_size, rank=info.rank, world_size=info.world_size,
                                        seed=t.seed, start=self.progress.data_position)
        # The loader gets its own generator: the global RNG belongs to dropout, and resume restores it.
        self.loader = DataLoader(train_ds, batch_sampler=sampler, num_workers=t.num_workers,
                                 pin_memory=info.device.type == "cuda", generator=torch.Generator())
        self.val = self._eval_set(self.plan.val, t.eval_batches)
        self.test = self._eval_set(self.plan.test, t.test_batches)

        self.metrics = MetricsLog(self.output_dir / METRICS)
        if info.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.output_dir / RUN_CONFIG)
            if self.resumed_from and not self.metrics.path.exists():
                _copy_previous_metrics(Path(self.resumed_from), self.metrics.path)
            self.metrics.start(self.progress.step if self.resumed_from else None)
            if not self.resumed_from:
                (self.output_dir / SAMPLES).unlink(missing_ok=True)
            (self.output_dir / SUMMARY).unlink(missing_ok=True)
            prepare_plotting()  # the import now, not inside the first eval the time budget measures
        self.sentencepiece = self._load_sentencepiece() if info.is_main else None

        model = self.raw_model
        self.ddp = None
        if info.enabled:
            model = self.ddp = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
        if t.compile:
            # Compiling the DDP wrapper lets dynamo split graphs at DDP's gradient buckets (DDPOptimizer).
            model = torch.compile(model)
        self.model = model

        args = self.plan.model_args
        self.n_params = self.raw_model.num_parameters()
        self.tokens_per_step = t.batch_size * t.grad_accum * info.world_size * args.context_len
        self.budget = Budget(self.deadline, total=self.budget_total, micro_steps=t.grad_accum,
                             checkpoint_guess=0.5 + 12 * self.n_params / 200e6)  # weights + Adam moments at ~200 MB/s
        self.log(f"model {cfg.model.preset}: {self.n_params / 1e6:.2f}M parameters, {args.n_layer} layers, "
                 f"d_model {args.d_model}, context {args.context_len}, vocab {args.vocab_size} | {info.device} "
                 f"x{info.world_size}, {self.precision.name} | {len(train_ds):,} train windows, "
                 f"{self.tokens_per_step:,} tokens/step, {t.max_steps} steps")

    def _restore(self, path: str) -> None:
        t, info, p = self.config.training, self.dist, self.progress
        state = ckpt.load_checkpoint(path)
        ckpt.check_shape(state, self.plan.model_args.shape_dict(), path)
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and self.precision.uses_scaler:
            self.scaler.load_state_dict(state["scaler"])
        changed = self.schedule.differences(state.get("scheduler") or {})
        if changed:
            self.log(f"note: the schedule differs from the checkpoint's ({', '.join(changed)}); using the config's")
        p.step, p.data_position, p.tokens_seen = int(state["step"]), int(state["data_position"]), int(state["tokens_seen"])
        p.train_seconds = float(state.get("train_seconds", 0.0))
        p.best_val = state["best_val_loss"] if state.get("best_val_loss") is not None else math.inf
        p.last_val = state.get("val_loss")
        rng = state.get("rng") or []
        if len(rng) == info.world_size:
            # Exact continuation: this rank's dropout stream goes on where it stopped.
            torch.set_rng_state(rng[info.rank]["torch"])
            if info.device.type == "cuda" and "cuda" in rng[info.rank]:
                torch.cuda.set_rng_state(rng[info.rank]["cuda"], info.device)
        else:
            self.log(f"note: world size {len(rng)} -> {info.world_size}: dropout RNG reseeded, data order kept")
            torch.manual_seed(t.seed + 7919 * p.step + info.rank)
        self.log(f"resumed from {path} at step {p.step} ({p.tokens_seen:,} tokens seen)")
        if info.is_main and self.ckpt_dir.is_dir():
            ckpt.remove_after(self.ckpt_dir, p.step, log=self.log)

    # --- the loop ------------------------------------------------------------------------------
    def _train(self) -> str:
        """Train until max_steps, --stop-at-step or the time budget; returns which."""
        t, info, p, budget = self.config.training, self.dist, self.progress, self.budget
        max_steps = t.max_steps if self.stop_at_step is None else min(t.max_steps, self.stop_at_step)
        if self.show_progress and info.is_main:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=t.max_steps, initial=p.step, desc="train", dynamic_ncols=True)
        train_iter = iter(self.loader)
        # A checkpoint of this step already exists when resuming from this run's own folder.
        own = self.resumed_from is not None and Path(self.resumed_from).resolve().parent == self.ckpt_dir.resolve()
        self.last_saved, last_save_time, self.last_eval_step = (p.step if own else -1), time.time(), -1
        self.session_tokens, self.session_train_s = 0, 0.0
        last_log_train_s, last_log_step, bad_logs = p.train_seconds, p.step, 0
        self.model.train()
        while True:
            # Every rank must agree on stopping and saving: rank 0 decides, one tiny all-reduce shares it.
            # (In one process this is host-side bookkeeping, no device sync.)
            over_budget = info.is_main and budget.should_stop(val_batches=self.val["n_batches"],
                                                              test_batches=self.test["n_batches"])
            save_due = info.is_main and time.time() - last_save_time >= t.checkpoint_minutes * 60
            over_budget, save_due = D.all_reduce_max([int(over_budget), int(save_due)], info)
            if save_due and self.last_saved != p.step and p.step > 0:
                self._save(is_best=False)
                last_save_time = time.time()
            if p.step >= max_steps:
                return "max_steps" if p.step >= t.max_steps else "stop_at_step"
            if over_budget:
                self.log(f"time budget: stopping at step {p.step} with {format_duration(budget.remaining())} left")
                return "time_budget"

            t0 = time.time()
            lr = self.schedule(p.step)
            loss_sum, targets, grad_norm = self._step(train_iter, lr)
            elapsed = time.time() - t0
            p.step += 1
            p.data_position += t.batch_size * info.world_size * t.grad_accum
            p.tokens_seen += self.tokens_per_step
            p.train_seconds += elapsed
            self.session_tokens += self.tokens_per_step
            self.session_train_s += elapsed
            budget.record_step(elapsed)
            if self.bar is not None:
                self.bar.update(1)

            if p.step % t.log_interval == 0 or p.step == max_steps or p.step == 1:
                # .item() waits for the device: only on logging steps.
                (total,) = D.all_reduce_sum([loss_sum.item()], info)
                p.last_loss = total / max(targets, 1.0)
                bad_logs = 0 if math.isfinite(p.last_loss) else bad_logs + 1
                if bad_logs >= 3:
                    raise UserError(f"training diverged: loss {p.last_loss} at step {p.step} (3 logs in a row); "
                                    "lower training.lr, or use bf16/fp32")
                # Throughput of the training steps alone (evals and checkpoints in between excluded).
                tok_s = (p.step - last_log_step) * self.tokens_per_step / max(p.train_seconds - last_log_train_s, 1e-9)
                last_log_train_s, last_log_step = p.train_seconds, p.step
                self._report_train(lr, float(grad_norm), tok_s, time.time())

            is_best = False
            if p.step % t.eval_interval == 0 and self.val["n_batches"]:
                p.last_val = self._eval_and_report("val")
                self.last_eval_step = p.step
                is_best = p.last_val < p.best_val
                p.best_val = min(p.best_val, p.last_val)
            if p.step % t.checkpoint_interval == 0 or is_best:
                self._save(is_best=is_best)
                last_save_time = time.time()

    def _step(self, train_iter, lr: float) -> tuple[torch.Tensor, float, torch.Tensor]:
        """One optimizer step over grad_accum micro-batches: (summed loss, global target count, grad norm)."""
        t, info = self.config.training, self.dist
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        micro = [next(train_iter) for _ in range(t.grad_accum)]
        # The loss is a mean over every unmasked target of the global batch: summed per micro-batch and
        # divided by the global count (an all-reduce of one integer; the labels are still on the host).
        (targets,) = D.all_reduce_sum([sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro)], info)
        # DDP averages gradients over ranks; multiplying by the world size turns that back into a sum.
        scale = info.world_size / max(targets, 1.0)
        loss_sum = torch.zeros((), device=info.device)
        for i, batch in enumerate(micro):
            batch = {k: v.to(info.device, non_blocking=True) for k, v in batch.items()}
            # No gradient all-reduce on accumulation micro-steps: only the last one syncs.
            last = i == t.grad_accum - 1
            with self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext():
                with self.precision.autocast():
                    _, loss = self.model(batch["input_ids"], batch["labels"], doc_ids=batch.get("doc_ids"),
                                         position_ids=batch.get("position_ids"))
                # fp16: the scaler multiplies the loss so small gradients survive; unscaled before clipping.
                self.scaler.scale(loss * scale).backward()
            loss_sum += loss.detach()
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(),
                                                   t.grad_clip if t.grad_clip > 0 else float("inf"))
        self.scaler.step(self.optimizer)  # skipped by the scaler when fp16 gradients overflowed
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, targets, grad_norm

    def _report_train(self, lr: float, grad_norm: float, tok_s: float, now: float) -> None:
        p, t = self.progress, self.config.training
        if not self.dist.is_main:
            return
        self.metrics.write({"step": p.step, "loss": p.last_loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tok_s,
                            "tokens_seen": p.tokens_seen, "elapsed_s": now - self.session_start})
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{p.last_loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:,.0f}")
        else:
            self.log(f"step {p.step}/{t.max_steps} | loss {p.last_loss:.4f} | lr {lr:.2e} | grad {grad_norm:.3f} "
                     f"| {tok_s:,.0f} tok/s | {format_duration(now - self.session_start)}")

    # --- the end: a checkpoint first (it is what the time budget protects), then the final evals ---
    def _finish(self, stop_reason: str) -> dict[str, Any]:
        p, info = self.progress, self.dist
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.last_saved != p.step and p.step > 0:
            self._save(is_best=False)
        if self.val["n_batches"] and self.last_eval_step != p.step:
            if self._time_for(self.val["n_batches"], extras=True):
                p.last_val = self._eval_and_report("val")
                if p.last_val < p.best_val:
                    p.best_val = p.last_val
                    if info.is_main and self.last_saved == p.step:
                        ckpt.mark_best(self.ckpt_dir / f"{ckpt.step_name(p.step)}.pt", p.last_val)
            else:
                self.log("note: final validation skipped: not enough of the time budget left")
        test_loss = None
        if self.test["n_batches"]:
            if self._time_for(self.test["n_batches"], extras=False):
                test_loss = self._eval_and_report("test")
            else:
                self.log("note: test evaluation skipped: not enough of the time budget left")
        summary = self._summary(stop_reason, test_loss)
        if info.is_main:
            write_summary(self.output_dir / SUMMARY, summary)
            self.log(f"done: {stop_reason} at step {p.step}; val loss {_fmt(p.last_val)}, test loss {_fmt(test_loss)}; "
                     f"outputs in {self.output_dir}")
        return summary

    # --- pieces of the loop ----------------------------------------------------------------------
    def _eval_set(self, shards: Optional[list[Shard]], max_batches: Optional[int]) -> dict[str, Any]:
        t, info = self.config.training, self.dist
        if not shards:
            return {"loader": None, "n_batches": 0}
        overlap = any(s.stride < s.seq_len for s in shards)
        keep_overlap = t.eval_loss_on_overlap if t.eval_loss_on_overlap is not None else not overlap
        ds = PackedDataset(shards, mask_overlap=not keep_overlap, document_attention=t.document_attention)
        batches = eval_batches(len(ds), t.batch_size, max_batches=max_batches, rank=info.rank, world_size=info.world_size)
        # The busiest rank's count: what the budget must wait for.
        n_batches = len(eval_batches(len(ds), t.batch_size, max_batches=max_batches, rank=0, world_size=info.world_size))
        workers = min(t.num_workers, 1)
        loader = DataLoader(ds, batch_sampler=batches, num_workers=workers, persistent_workers=workers > 0,
                            pin_memory=info.device.type == "cuda", generator=torch.Generator())
        return {"loader": loader, "n_batches": n_batches, "sliding": not keep_overlap}

    @torch.no_grad()
    def _evaluate(self, which: str) -> float:
        info, loader = self.dist, getattr(self, which)["loader"]
        self.model.eval()
        total = torch.zeros((), dtype=torch.float64, device=info.device)
        count = 0
        for batch in loader:
            batch = {k: v.to(info.device, non_blocking=True) for k, v in batch.items()}
            with self.precision.autocast():
                _, loss = self.raw_model(batch["input_ids"], batch["labels"], doc_ids=batch.get("doc_ids"),
                                         position_ids=batch.get("position_ids"))
            total += loss.double()
            count += int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
        self.model.train()
        loss_total, n = D.all_reduce_sum([total.item(), count], info)
        return loss_total / n if n else float("nan")

    def _eval_and_report(self, which: str) -> float:
        step, t0 = self.progress.step, time.time()
        loss = self._evaluate(which)
        seconds = time.time() - t0
        if self.dist.is_main:
            self.metrics.write({"step": step, f"{which}_loss": loss, f"{which}_ppl": perplexity(loss), "eval_s": seconds})
            sliding = " (sliding window)" if getattr(self, which).get("sliding") else ""
            self.log(f"eval step {step}: {which} loss {loss:.4f}, perplexity {_fmt(perplexity(loss), 2)}{sliding}")
            if which == "val":
                plot_loss(self.metrics.read(), self.output_dir / LOSS_PNG)
                self._write_samples(step)
                write_partial_summary(self.output_dir / SUMMARY, self._summary("running", None), loss)
        if which == "val":
            self.budget.record_eval(seconds, self.val["n_batches"], time.time() - t0 - seconds)
        return loss

    def _time_for(self, batches: int, *, extras: bool) -> bool:
        """Whether an evaluation of `batches` (with its plot and samples) still fits the budget (rank 0 decides for all)."""
        budget = self.budget
        ok = self.dist.is_main and (budget.deadline is None
                                    or budget.remaining() > 1.2 * budget.eval_estimate(batches, extras=extras) + budget.margin)
        return bool(D.all_reduce_max([int(ok)], self.dist)[0])

    def _save(self, *, is_best: bool) -> None:
        p, t0 = self.progress, time.time()
        rng = D.gather_objects(_rng_state(self.dist.device), self.dist)  # every rank's dropout stream
        if self.dist.is_main:
            state = {
                "format": ckpt.FORMAT, "version": ckpt.VERSION, "step": p.step, "tokens_seen": p.tokens_seen,
                "data_position": p.data_position, "model": self.raw_model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.precision.uses_scaler else None,
                "scheduler": self.schedule.state_dict(), "rng": rng,
                "best_val_loss": None if math.isinf(p.best_val) else p.best_val, "val_loss": p.last_val,
                "train_seconds": p.train_seconds, "model_args": self.plan.model_args.to_dict(),
                "config": self.config.to_dict(), "world_size": self.dist.world_size,
                "tokenizer_dir": str(self.plan.tokenizer_dir), "precision": self.precision.name,
                "prompt_prefix": self.prompt_prefix, "eos_id": self.eos_id,
            }
            path = ckpt.save_checkpoint(state, self.ckpt_dir, is_best=is_best, keep=self.config.training.keep_checkpoints,
                                        max_bytes=self.config.training.max_checkpoint_gb * 1e9, log=self.log)
            self.log(f"checkpoint {path.name}{' (best)' if is_best else ''} in {time.time() - t0:.1f}s")
        self.last_saved = p.step
        self.budget.record_checkpoint(time.time() - t0)

    def _load_sentencepiece(self):
        model_file = self.plan.tokenizer_dir / (self.plan.tokenizer.model_file or MODEL_FILE)
        if not self.config.training.sample_prompts:
            return None
        if not model_file.is_file():
            self.log(f"note: samples skipped: no tokenizer model at {model_file}")
            return None
        import sentencepiece as spm

        return spm.SentencePieceProcessor(model_file=str(model_file))

    def _write_samples(self, step: int) -> None:
        sp, t = self.sentencepiece, self.config.training
        if sp is None:
            return
        generator = torch.Generator().manual_seed(t.seed + step)  # never the training RNG
        samples = []
        for prompt in t.sample_prompts:
            ids = sp.encode(prompt)
            with self.precision.autocast():
                out = generate(self.raw_model, self.prompt_prefix + ids, max_new_tokens=t.sample_tokens,
                               temperature=t.temperature, top_k=t.top_k, eos_id=self.eos_id, generator=generator)
            # Decode prompt and continuation together, so the word boundary between them survives.
            samples.append((prompt, sp.decode([i for i in ids + out if i < sp.get_piece_size()])))
        append_samples(self.output_dir / SAMPLES, step, samples)

    def _summary(self, stop_reason: str, test_loss: Optional[float]) -> dict[str, Any]:
        info, t, p = self.dist, self.config.training, self.progress
        # Throughput of this session's training steps (evals, samples and checkpoints excluded).
        tok_s = self.session_tokens / self.session_train_s if self.session_train_s > 0 else None
        flops = self.raw_model.flops_per_token(self.plan.model_args.context_len) * tok_s if tok_s else None
        peak = None
        if info.device.type == "cuda":
            name = torch.cuda.get_device_name(info.device)
            peak = next((v for k, v in _PEAK_FLOPS.items() if k in name), None)
        last, best = self.ckpt_dir / "last.pt", self.ckpt_dir / "best.pt"
        return {
            "status": "completed" if stop_reason == "max_steps" else "stopped",
            "stop_reason": stop_reason,
            "step": p.step,
            "max_steps": t.max_steps,
            "tokens_seen": p.tokens_seen,
            "train_loss": p.last_loss,
            "val_loss": p.last_val,
            "val_ppl": perplexity(p.last_val),
            "best_val_loss": None if math.isinf(p.best_val) else p.best_val,
            "test_loss": test_loss,
            "test_ppl": perplexity(test_loss),
            "session_seconds": time.time() - self.session_start,
            "train_seconds": p.train_seconds,
            "deadline": self.deadline,  # time.time() values: a time-budgeted run ends before its deadline
            "finished_at": time.time(),
            "tokens_per_s": tok_s,
            "model_flops_per_s": flops,
            "mfu": flops / (peak * info.world_size) if flops and peak else None,
            "parameters": self.n_params,
            "model": self.plan.model_args.to_dict(),
            "preset": self.config.model.preset,
            "tokens_per_step": self.tokens_per_step,
            "precision": self.precision.name,
            "device": str(info.device) if info.device.type == "cpu" else torch.cuda.get_device_name(info.device),
            "world_size": info.world_size,
            "resumed_from": self.resumed_from,
            "checkpoints": {"last": str(last) if last.exists() else None, "best": str(best) if best.exists() else None},
            "output_dir": str(self.output_dir),
            "packed_dir": str(self.packed_dir),
        }


def _copy_previous_metrics(resume_path: Path, target: Path) -> None:
    """Resuming from another run's folder (Kaggle: the previous session's output): carry its metrics over."""
    source = resume_path.resolve().parent.parent / METRICS
    if source.is_file() and source.resolve() != target.resolve():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.train_lm", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, help="ROOT/config/training_config.json (default: ./config/training_config.json)")
    p.add_argument("--root", type=Path, help="the data root paths are relative to (default: the folder holding config/)")
    p.add_argument("--packed-dir", type=Path, help="folder of packed splits (default: paths.packed_dir)")
    p.add_argument("--output-dir", type=Path, help="checkpoints, metrics, samples (default: paths.output_dir)")
    p.add_argument("--preset", choices=["tiny", "small", "base"], help="model size (model.preset)")
    p.add_argument("--max-steps", type=int, help="training.max_steps: the schedule's length")
    p.add_argument("--stop-at-step", type=int, help="stop after this step (with a checkpoint); the schedule is unchanged")
    p.add_argument("--resume", default="auto", help="auto (newest valid checkpoint of the output dir), PATH, or none")
    p.add_argument("--time-budget", help="stop cleanly before this much time: 11h30m, 90m, or seconds")
    p.add_argument("--checkpoint-minutes", type=float, help="training.checkpoint_minutes")
    p.add_argument("--nproc", default="auto", help="processes (GPUs): auto = one per visible GPU; >1 relaunches under torchrun")
    p.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], help="training.precision")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--show-progress", action="store_true", help="a progress bar with loss, lr, tokens/s and ETA")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override any config field (repeatable)")
    p.add_argument("--deadline", type=float, help=argparse.SUPPRESS)  # used by the torchrun relaunch
    p.add_argument("--budget-total", type=float, help=argparse.SUPPRESS)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    config_path = args.config or find_config(".")
    config = load_config(config_path, args.overrides)
    config = config.replace("model", preset=args.preset)
    config = config.replace("training", precision=args.precision, compile=True if args.compile else None,
                            checkpoint_minutes=args.checkpoint_minutes)
    root = args.root or (config_root(config_path) if config_path else Path.cwd())
    summary = run_training(
        config, root=root, packed_dir=args.packed_dir, output_dir=args.output_dir, resume=args.resume,
        max_steps=args.max_steps, stop_at_step=args.stop_at_step, time_budget=args.time_budget,
        deadline=args.deadline, budget_total=args.budget_total, show_progress=args.show_progress, nproc=args.nproc,
        device=args.device,
    )
    if int(os.environ.get("RANK", "0")) == 0 and not os.environ.get(D.RELAUNCHED_ENV):  # the parent prints it
        print(f"{summary['stop_reason']}: step {summary['step']}, val ppl {_fmt(summary['val_ppl'], 2)}, "
              f"test ppl {_fmt(summary['test_ppl'], 2)} -> {summary['output_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
