"""The trainer's config: the whole `config/training_config.json`, with the `model` and `training` sections typed.

fastpack's `Config` holds the sections of the packer and the corpus stages and carries the others
through verbatim; `RunConfig` adds this package's two sections (checked when built, like the rest)
and rejects any section it does not know. The trainer, the Kaggle runner and the training tests
load the file through here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, Optional, Sequence, Union

from fastpack.config import CONFIG_RELPATH, Config, config_root, find_config, save_config
from fastpack.errors import UserError

__all__ = ["RunConfig", "ModelConfig", "TrainingConfig", "load_config", "save_config", "config_root", "find_config",
           "CONFIG_RELPATH"]

_FROZEN = dict(frozen=True, kw_only=True, slots=True)


@dataclass(**_FROZEN)
class ModelConfig:
    """The GPT's shape (trainer/model.py). A preset gives every size; a field set here overrides it."""

    preset: Literal["tiny", "small", "base"] = "small"  # tiny (tests), small (30M at vocab 32k), base (124M)
    n_layer: Optional[int] = None  # None: from the preset
    n_head: Optional[int] = None
    d_model: Optional[int] = None  # must be a multiple of n_head; head size even (rotary)
    d_ff: Optional[int] = None  # None: SwiGLU's ~8/3 * d_model, rounded up to a multiple of 64
    context_len: Optional[int] = None  # None: the packed windows' length (their meta); set: they must have it
    dropout: float = 0.0
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    vocab_size: Optional[int] = None  # None: from tokenizer_info.json

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "d_model", "d_ff", "context_len", "vocab_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"model.{name} must be >= 1 (or null), got {value}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"model.dropout must be in [0, 1), got {self.dropout}")


@dataclass(**_FROZEN)
class TrainingConfig:
    """The training loop (trainer/train_lm.py). One step = grad_accum micro-batches on every process."""

    batch_size: int = 16  # windows per micro-batch per process
    grad_accum: int = 4  # micro-batches per optimizer step
    lr: float = 3e-4  # peak, reached after warmup_steps
    min_lr: float = 3e-5  # the cosine ends here at max_steps
    warmup_steps: int = 200
    max_steps: int = 5000  # optimizer steps; the schedule's length
    weight_decay: float = 0.1  # on matrices only: never on norms, biases or embeddings
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global grad norm; 0: no clipping
    eval_interval: int = 250  # steps between validation runs (and samples)
    eval_batches: Optional[int] = 50  # validation batches per process; None: the whole val split
    test_batches: Optional[int] = None  # test batches per process at the end; None: the whole test split
    log_interval: int = 10
    checkpoint_interval: int = 500  # steps between periodic checkpoints
    checkpoint_minutes: float = 10.0  # also a checkpoint this often: a kill (Kaggle, 12 h, no catchable signal) loses < 15 min
    keep_checkpoints: int = 3  # periodic ones kept besides last and best
    max_checkpoint_gb: float = 15.0  # Kaggle keeps at most 20 GB of output
    max_nonfinite_steps: int = 5  # a non-finite gradient norm skips the update; this many in a row stop the run
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"  # auto: bf16 on cc >= 8.0, fp16 below, fp32 on CPU
    compile: Optional[bool] = None  # torch.compile the model; None: on CUDA (with Triton), off on CPU
    auto_batch_size: bool = False  # CUDA: the largest micro-batch that fits; grad_accum keeps batch_size x grad_accum
    activation_checkpointing: bool = False  # recompute activations in backward: less memory, ~30% more compute
    attention_kernel: Literal["auto", "flex", "dense"] = "auto"  # document attention: auto = flex on CUDA, else dense
    seed: int = 1337  # init, shuffling (with the epoch) and dropout
    num_workers: int = 2  # DataLoader worker processes per training process
    time_budget: Union[float, str, None] = None  # e.g. "11h30m", "90m" or "3600" (seconds): stop cleanly before it
    sample_prompts: list[str] = field(default_factory=lambda: ["Chương 1", "Ngày hôm ấy"])
    sample_tokens: int = 100  # new tokens per prompt in samples.txt
    temperature: float = 0.8
    top_k: int = 50  # 0: sample from the whole vocabulary
    document_attention: bool = False  # attend only within a document (needs the boundaries sidecar)
    loss_on_overlap: bool = True  # False: mask the prefix a stride < seq_len window shares
    eval_loss_on_overlap: Optional[bool] = None  # None: False (sliding-window perplexity) when val/test stride < seq_len

    def __post_init__(self) -> None:
        for name in ("batch_size", "grad_accum", "max_steps", "eval_interval", "log_interval",
                     "checkpoint_interval", "keep_checkpoints", "sample_tokens", "max_nonfinite_steps"):
            if getattr(self, name) < 1:
                raise UserError(f"training.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_batches", "test_batches"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UserError(f"training.{name} must be >= 1 or null (the whole split), got {value}")
        for name in ("warmup_steps", "num_workers", "top_k"):
            if getattr(self, name) < 0:
                raise UserError(f"training.{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.lr or not 0 <= self.min_lr <= self.lr:
            raise UserError(f"training: need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr} min_lr={self.min_lr}")
        if self.grad_clip < 0 or self.weight_decay < 0 or self.temperature < 0:
            raise UserError("training: grad_clip, weight_decay and temperature must be >= 0")
        if self.checkpoint_minutes <= 0 or self.max_checkpoint_gb <= 0:
            raise UserError("training: checkpoint_minutes and max_checkpoint_gb must be > 0")


@dataclass(**_FROZEN)
class RunConfig(Config):
    """Every section of the config file: fastpack's, then the model and the training loop."""

    OPEN: ClassVar[bool] = False  # a section nobody knows is a typo

    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a config file (defaults when `path` is None) and apply `section.key=value` overrides."""
    return RunConfig.load(path, overrides)
