"""Training-speed measurement: models on the same packed windows in one process, timed in interleaved rounds.

A *variant* is a model with its optimizer, scaler and forward; `compare` builds each one (measuring
its own peak GPU memory: weights, gradients, AdamW state and one step's activations), warms it up
(compilation happens there), then times `steps` optimizer steps per round, rotating the order each
round so drift in machine load falls on every variant alike. Step time = wall time of the steps /
steps, with a device sync at both ends (kernels run ahead of the host).
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch

from benchmarks.reference_gpt import RefConfig, ReferenceGPT
from trainer.mfu import flops_per_token, peak_flops
from trainer.model import GPT, ModelArgs, swiglu_hidden
from trainer.optim import param_groups
from trainer.precision import Precision

EOS = 0


@dataclass(frozen=True)
class TrainShape:
    name: str
    n_layer: int
    n_head: int
    d_model: int
    seq_len: int
    vocab_size: int
    batch: int

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.seq_len


def shapes_for(device_type: str, batch: Optional[int] = None) -> list[TrainShape]:
    """The presets at seq_len 1024 and vocab 32000 on a GPU; scaled-down twins on CPU (same head size, same ratios)."""
    if device_type == "cuda":
        return [TrainShape("small", 10, 6, 384, 1024, 32000, batch or 16),
                TrainShape("base", 14, 12, 768, 1024, 32000, batch or 8)]
    return [TrainShape("small-cpu", 4, 3, 192, 256, 4096, batch or 4),
            TrainShape("base-cpu", 4, 6, 384, 256, 4096, batch or 2)]


def packed_batches(shape: TrainShape, n_batches: int, device: torch.device, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Concat-packed windows (eos after each document, as fastpack packs them) with document ids and positions."""
    from benchmarks.datagen import document_lengths

    rng = np.random.default_rng(seed)
    tokens = n_batches * shape.tokens_per_step
    lengths = document_lengths(tokens + shape.seq_len, rng)
    # fastpack's concat windows (doc eos doc eos ..., cut every seq_len), built with numpy here: numba's
    # worker threads, once started in this process, kept competing with the timed steps for the two cores.
    ends = np.cumsum(lengths + 1)
    stream = rng.integers(1, shape.vocab_size, size=int(ends[-1]), dtype=np.int64)  # eos (0) only as separator
    stream[ends - 1] = EOS
    n = n_batches * shape.batch
    windows = stream[: n * shape.seq_len].reshape(n, shape.seq_len)
    ids = torch.from_numpy(windows.astype(np.int64))
    # A document ends at its eos: the segment of position t is the number of eos strictly before it.
    ends = (ids == EOS).long()
    doc_ids = torch.cumsum(ends, 1) - ends
    starts = torch.zeros_like(ids)
    for b in range(ids.shape[0]):
        _, counts = torch.unique_consecutive(doc_ids[b], return_counts=True)
        starts[b] = torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    positions = torch.arange(shape.seq_len).expand_as(ids) - starts
    out = []
    for i in range(n_batches):
        part = slice(i * shape.batch, (i + 1) * shape.batch)
        out.append({"input_ids": ids[part].to(device), "doc_ids": doc_ids[part].to(device),
                    "position_ids": positions[part].to(device)})
    return out


@dataclass
class Variant:
    name: str
    step: Callable[[dict[str, torch.Tensor]], None]
    n_params: int
    flops_per_token: float
    peak_mem_bytes: Optional[int] = None
    note: str = ""


def _optimizer_step(model: torch.nn.Module, forward: Callable, precision: Precision, device: torch.device) -> Callable:
    """One training step as the trainer takes it: autocast forward, (scaled) backward, clip at 1.0, fused AdamW."""
    optimizer = torch.optim.AdamW(param_groups(model, 0.1), lr=3e-4, betas=(0.9, 0.95), fused=device.type == "cuda")
    scaler = precision.grad_scaler()
    params = list(model.parameters())

    def step(batch: dict[str, torch.Tensor]) -> None:
        with precision.autocast():
            loss = forward(batch)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)

    return step


def ours(shape: TrainShape, precision: Precision, device: torch.device, *, compile: bool = False,
         document_attention: bool = False, kernel: str = "dense") -> Variant:
    torch.manual_seed(0)
    args = ModelArgs(vocab_size=shape.vocab_size, n_layer=shape.n_layer, n_head=shape.n_head, d_model=shape.d_model,
                     d_ff=swiglu_hidden(shape.d_model), context_len=shape.seq_len)
    model = GPT(args).to(device)
    model.attention_kernel = kernel
    run = torch.compile(model) if compile else model
    scale = 1.0 / (shape.batch * (shape.seq_len - 1))

    def forward(batch):
        ids = batch["input_ids"]
        extra = {"doc_ids": batch["doc_ids"], "position_ids": batch["position_ids"]} if document_attention else {}
        return run(ids, ids, **extra)[1] * scale

    n = model.num_parameters()
    return Variant("ours", _optimizer_step(model, forward, precision, device), n,
                   flops_per_token(n, shape.n_layer, shape.d_model, shape.seq_len))


def reference(shape: TrainShape, precision: Precision, device: torch.device, *, compile: bool = False) -> Variant:
    torch.manual_seed(0)
    cfg = RefConfig(vocab_size=shape.vocab_size, block_size=shape.seq_len, n_layer=shape.n_layer,
                    n_head=shape.n_head, n_embd=shape.d_model)
    model = ReferenceGPT(cfg).to(device)
    run = torch.compile(model) if compile else model

    def forward(batch):
        ids = batch["input_ids"]
        targets = torch.nn.functional.pad(ids[:, 1:], (0, 1), value=-1)  # the same T-1 targets per window as ours
        return run(ids, targets)[1]

    n = model.num_parameters()
    return Variant("nanogpt-style", _optimizer_step(model, forward, precision, device), n,
                   flops_per_token(n, shape.n_layer, shape.d_model, shape.seq_len))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _build(name: str, factory: Callable[[], Variant], batches, warmup: int, device: torch.device) -> Variant:
    """Build and warm up one variant; on CUDA its own peak memory (what it allocated above what was there)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    variant = factory()
    variant.name = name
    for i in range(warmup):
        variant.step(batches[i % len(batches)])
    _sync(device)
    if device.type == "cuda":
        variant.peak_mem_bytes = torch.cuda.max_memory_allocated(device) - base
    return variant


@dataclass
class Timings:
    """Seconds per step, one entry per round: wall clock, and this process's CPU time (CPU runs: the work
    done, less sensitive than the wall clock to other processes on a shared machine)."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]


def compare(factories: dict[str, Callable[[], Variant]], batches, *, rounds: int, steps: int, warmup: int,
            device: torch.device) -> tuple[dict[str, Variant], Timings]:
    """Each variant's step seconds per round (rounds interleaved, order rotated every round)."""
    variants = {name: _build(name, f, batches, warmup, device) for name, f in factories.items()}
    timings = Timings({name: [] for name in variants}, {name: [] for name in variants})
    names = list(variants)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            _sync(device)
            wall, cpu = time.perf_counter(), time.process_time()
            for i in range(steps):
                variants[name].step(batches[i % len(batches)])
            _sync(device)
            timings.wall[name].append((time.perf_counter() - wall) / steps)
            timings.cpu[name].append((time.process_time() - cpu) / steps)
    return variants, timings


def summarize(shape: TrainShape, variant: Variant, timings: Timings, *, device_name: str,
              precision: str, world: int = 1) -> dict:
    step_times = timings.wall[variant.name]
    median = statistics.median(step_times)
    tok_s = shape.tokens_per_step / median
    peak = peak_flops(device_name, precision)
    return {"shape": shape.name, "variant": variant.name, "params_m": variant.n_params / 1e6,
            "step_ms": 1000 * median, "step_ms_all": [1000 * t for t in step_times], "tokens_per_s": tok_s,
            "cpu_ms": 1000 * statistics.median(timings.cpu[variant.name]),
            "best_cpu_ms": 1000 * min(timings.cpu[variant.name]), "best_step_ms": 1000 * min(step_times),
            "mfu": variant.flops_per_token * tok_s / (peak * world) if peak else None,
            "peak_mem_gb": variant.peak_mem_bytes / 2**30 if variant.peak_mem_bytes is not None else None,
            "precision": precision, "device": device_name, "batch": shape.batch, "seq_len": shape.seq_len}


def speed_ratio(times: dict[str, list[float]], fast: str, slow: str) -> dict[str, float]:
    """How much faster `fast` is than `slow` (> 1: faster), three ways: medians over rounds; the median of
    the per-round ratios; the best rounds (min over rounds: the least disturbed, as timeit reports)."""
    return {"median": statistics.median(times[slow]) / statistics.median(times[fast]),
            "paired": statistics.median(s / f for s, f in zip(times[slow], times[fast])),
            "best": min(times[slow]) / min(times[fast])}
