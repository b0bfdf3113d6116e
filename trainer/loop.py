"""The training loop on one process (a rank under torchrun, or the only process).

    Trainer(config, options).run()
      setup    plan -> model, optimizer, scaler, schedule -> resume -> data -> outputs -> DDP / compile
      train    [stop check -> forward/backward over grad_accum micro-batches -> clip -> optimizer step
                -> log -> eval + samples -> checkpoint] until max_steps, --stop-at-step or the time budget
      finish   checkpoint -> final validation -> test -> summary

Every rank runs all of it; rank 0 alone logs and writes files. Decisions every rank must share
(stop, save) are taken by rank 0 and shared with one small all-reduce.
"""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch.utils.data import DataLoader

from fastpack.errors import UserError

from trainer import checkpoint as ckpt
from trainer import distributed as D
from trainer.attention import choose_kernel
from trainer.batch_size import HEADROOM, cuda_trial, oom_message, pick_micro_batch, trial_fits
from trainer.batch_size import describe as describe_batch
from trainer.budget import Budget, format_duration
from trainer.compiling import compile_decision, is_compile_error
from trainer.config import RunConfig, save_config
from trainer.data import PackedDataset, ResumableBatchSampler
from trainer.guard import NonFiniteGuard, reclaim_training_temps, require_finite_weights, training_lock
from trainer.evaluation import EvalSet, eval_record, evaluate, make_eval_set
from trainer.launch import RunOptions
from trainer.mfu import describe_peak, mfu, peak_flops
from trainer.model import GPT, IGNORE_INDEX
from trainer.optim import build_optimizer
from trainer.outputs import (LOSS_PNG, METRICS, RUN_CONFIG, SAMPLES, SUMMARY, MetricsLog, perplexity, plot_loss,
                             prepare_plotting, write_partial_summary, write_summary)
from trainer.plan import prepare
from trainer.precision import Precision, precision_for
from trainer.resume import Progress, resolve_resume, restore_progress, restore_rng, rng_state
from trainer.sampling import load_sentencepiece, prompt_prefix, write_samples
from trainer.schedule import CosineSchedule, warmup_for
from trainer.summary import build_summary, fmt


class Trainer:
    """One run of the loop on this process."""

    def __init__(self, config: RunConfig, options: RunOptions, log: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.time) -> None:
        self.config, self.options, self._log = config, options, log
        self.clock = clock  # every time the budget sees; injectable so tests need no wall-clock bounds
        self.output_dir = options.output_dir
        self.ckpt_dir = options.output_dir / ckpt.CHECKPOINT_DIR
        self.bar = None  # the tqdm bar with --show-progress (rank 0)

    def log(self, message: str) -> None:
        if self.dist.is_main:
            if self.bar is not None:
                self.bar.write(message)
            else:
                self._log(message)

    def run(self) -> dict[str, Any]:
        owns_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
        self.dist = D.init_distributed(self.options.device)
        try:
            with training_lock(self.output_dir, self.dist.is_main):  # a second run here stops, naming this one
                self.setup()
                stop_reason = self.train()
                summary = self.finish(stop_reason)
                # Leave together: a rank tearing down gloo while rank 0 still writes can abort at exit.
                D.barrier(self.dist)
            return summary
        finally:
            self._close_bar()
            if owns_group:
                D.close_distributed()

    # --- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        self.session_start = self.clock()
        self.plan = prepare(self.config, root=self.options.root, packed_dir=self.options.packed_dir, log=self.log)
        meta = self.plan.train[0].meta
        self.eos_id, self.prompt_prefix = meta.eos_id, prompt_prefix(meta)
        self.precision: Precision = precision_for(self.config.training.precision, self.dist.device)
        if self.precision.note:
            self.log(f"note: {self.precision.note}")
        if self.dist.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls on tensor cores where there are any
            torch.backends.cudnn.allow_tf32 = True
        self._build_model()
        self._fit_micro_batch()
        self._resume()
        self._build_data()
        self._prepare_outputs()
        self._wrap_model()
        self._announce()

    def _build_model(self) -> None:
        t, device = self.config.training, self.dist.device
        torch.manual_seed(t.seed)  # same initial weights on every rank
        self.raw_model = GPT(self.plan.model_args).to(device)
        self.raw_model.activation_checkpointing = t.activation_checkpointing
        kernel, why = choose_kernel(t.attention_kernel, device_type=device.type, dropout=self.plan.model_args.dropout)
        self.raw_model.attention_kernel = kernel
        if t.document_attention:
            self.log(f"document attention: {why}")
        self.optimizer = build_optimizer(self.raw_model, t, device)
        self.scaler = self.precision.grad_scaler()
        warmup, note = warmup_for(t.warmup_steps, t.max_steps)
        if note:
            self.log(note)
        self.schedule = CosineSchedule(t.lr, t.min_lr, warmup, t.max_steps)
        self.progress = Progress()
        self.guard = NonFiniteGuard(t.max_nonfinite_steps, lr=t.lr, ckpt_dir=self.ckpt_dir, log=self.log,
                                    device=self.dist.device)

    def _fit_micro_batch(self) -> None:
        """training.auto_batch_size: the largest micro-batch that fits, the windows per step unchanged."""
        t, info = self.config.training, self.dist
        if not t.auto_batch_size:
            return
        if info.device.type != "cuda":
            self.log(f"note: training.auto_batch_size needs a CUDA GPU; keeping batch_size {t.batch_size}")
            return
        limit = HEADROOM * torch.cuda.get_device_properties(info.device).total_memory
        trial = cuda_trial(self.raw_model, seq_len=self.plan.model_args.context_len, device=info.device,
                           precision=self.precision, n_params=self.raw_model.num_parameters(),
                           doc_attention=t.document_attention)
        windows = t.batch_size * t.grad_accum
        batch, _ = pick_micro_batch(windows, lambda b: trial_fits(trial, b, limit_bytes=limit))
        batch = -D.all_reduce_max([-batch], info)[0]  # the smallest over ranks: every rank steps together
        self.config = self.config.replace("training", batch_size=batch, grad_accum=windows // batch)
        self.log(describe_batch(batch, windows // batch, (t.batch_size, t.grad_accum),
                                torch.cuda.get_device_name(info.device)))

    def _resume(self) -> None:
        t, info = self.config.training, self.dist
        # Rank 0 picks the checkpoint, every rank loads it. What the launching process hashed is not hashed again.
        ckpt.remember_checksums(self.options.checksums)
        path = resolve_resume(self.options.resume, self.ckpt_dir, self.log) if info.is_main else None
        self.resumed_from = D.broadcast_object(str(path) if path else None, info)
        if self.resumed_from:
            self._restore(self.resumed_from)
        else:
            torch.manual_seed(t.seed + 1 + info.rank)  # dropout differs across ranks

    def _restore(self, path: str) -> None:
        p = self.progress
        state = ckpt.load_checkpoint(path)
        ckpt.check_shape(state, self.plan.model_args.shape_dict(), path)
        self.raw_model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler") and self.precision.uses_scaler:
            self.scaler.load_state_dict(state["scaler"])
        changed = self.schedule.differences(state.get("scheduler") or {})
        if changed:
            self.log(f"note: the schedule differs from the checkpoint's ({', '.join(changed)}); using the config's")
        restore_progress(state, p)
        restore_rng(state, self.dist, seed=self.config.training.seed, step=p.step, log=self.log)
        self.log(f"resumed from {path} at step {p.step} ({p.tokens_seen:,} tokens seen)")
        if self.dist.is_main and self.ckpt_dir.is_dir():
            ckpt.remove_after(self.ckpt_dir, p.step, log=self.log)

    def _build_data(self) -> None:
        """The endless shuffled stream for training, fixed evenly spaced sets for evaluation."""
        t, info = self.config.training, self.dist
        train_ds = PackedDataset(self.plan.train, mask_overlap=not t.loss_on_overlap, document_attention=t.document_attention)
        sampler = ResumableBatchSampler(len(train_ds), t.batch_size, rank=info.rank, world_size=info.world_size,
                                        seed=t.seed, start=self.progress.data_position)
        # The loader gets its own generator: the global RNG belongs to dropout, and resume restores it.
        self.loader = DataLoader(train_ds, batch_sampler=sampler, num_workers=t.num_workers,
                                 pin_memory=info.device.type == "cuda", generator=torch.Generator())
        self.n_train_windows = len(train_ds)
        self.val: EvalSet = make_eval_set(self.plan.val, t.eval_batches, t, info)
        self.test: EvalSet = make_eval_set(self.plan.test, t.test_batches, t, info)

    def _prepare_outputs(self) -> None:
        self.metrics = MetricsLog(self.output_dir / METRICS)
        self.reclaimed = None
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.reclaimed = reclaim_training_temps(self.output_dir, self.ckpt_dir, self.log)
            save_config(self.config, self.output_dir / RUN_CONFIG)
            # Resuming from another run's folder (Kaggle: the previous session's output) carries its metrics over.
            previous = Path(self.resumed_from).resolve().parent.parent / METRICS if self.resumed_from else None
            self.metrics.start(self.progress.step if self.resumed_from else None, previous=previous)
            if not self.resumed_from:
                (self.output_dir / SAMPLES).unlink(missing_ok=True)
            (self.output_dir / SUMMARY).unlink(missing_ok=True)
            prepare_plotting()  # the import now, not inside the first eval the time budget measures
        self.sentencepiece = load_sentencepiece(self.plan, self.config.training, self.log) if self.dist.is_main else None

    def _wrap_model(self) -> None:
        info, model = self.dist, self.raw_model
        self.ddp = None
        if info.enabled:
            model = self.ddp = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[info.device.index] if info.device.type == "cuda" else None)
            self.log(f"DDP over {info.world_size} process(es), {torch.distributed.get_backend()} backend")
        self.compiled, note = compile_decision(self.config.training.compile, info.device.type)
        if note:
            self.log(note)
        if self.compiled:
            # Compiling the DDP wrapper lets dynamo split graphs at DDP's gradient buckets (DDPOptimizer).
            model = torch.compile(model)
        self.model = model

    def _announce(self) -> None:
        t, info, args = self.config.training, self.dist, self.plan.model_args
        self.n_params = self.raw_model.num_parameters()
        self.tokens_per_step = t.batch_size * t.grad_accum * info.world_size * args.context_len
        self.device_name = torch.cuda.get_device_name(info.device) if info.device.type == "cuda" else str(info.device)
        self.peak_flops = peak_flops(self.device_name, self.precision.name) if info.device.type == "cuda" else None
        self.flops_per_token = self.raw_model.flops_per_token(args.context_len)
        self.budget = Budget(self.options.deadline, total=self.options.budget_total, micro_steps=t.grad_accum,
                             checkpoint_guess=0.5 + 12 * self.n_params / 200e6, clock=self.clock)  # weights + Adam moments at ~200 MB/s
        self.log(f"model {self.config.model.preset}: {self.n_params / 1e6:.2f}M parameters, {args.n_layer} layers, "
                 f"d_model {args.d_model}, context {args.context_len}, vocab {args.vocab_size} | {info.device} "
                 f"x{info.world_size}, {self.precision.name} | {self.n_train_windows:,} train windows, "
                 f"{self.tokens_per_step:,} tokens/step, {t.max_steps} steps")
        self.log(describe_peak(self.device_name, self.precision.name))

    # --- the loop ------------------------------------------------------------------------------
    def train(self) -> str:
        """Train until max_steps, --stop-at-step or the time budget; returns which."""
        t, p = self.config.training, self.progress
        max_steps = t.max_steps if self.options.stop_at_step is None else min(t.max_steps, self.options.stop_at_step)
        self._open_bar()
        train_iter = iter(self.loader)
        self._start_session()
        self.model.train()
        while True:
            started = self.clock()
            micro = [next(train_iter) for _ in range(t.grad_accum)]  # host tensors; the loader prefetched them
            # One collective a step: whether to stop or save (rank 0 decides) and the step's target count.
            stop_reason, targets = self._stop_check(max_steps, micro)
            if stop_reason:
                return stop_reason

            # The step: forward/backward over grad_accum micro-batches -> clip -> optimizer step.
            lr = self.schedule(p.step)
            loss_sum, grad_norm = self._step_or_fall_back(micro, targets, lr)
            log_due = (p.step + 1) % t.log_interval == 0 or p.step + 1 == max_steps or p.step == 0
            if log_due and self.dist.device.type == "cuda":
                torch.cuda.synchronize(self.dist.device)  # kernels run ahead of the host: time what finished
            self._count_step(self.clock() - started)

            if log_due:
                self._log_step(loss_sum, targets, lr, grad_norm)

            is_best = False
            if p.step % t.eval_interval == 0 and self.val.n_batches:
                is_best = self._validate()
            if p.step % t.checkpoint_interval == 0 or is_best:
                self.save(is_best=is_best)

    def _start_session(self) -> None:
        p = self.progress
        # A checkpoint of this step already exists when resuming from this run's own folder.
        own = self.resumed_from is not None and Path(self.resumed_from).resolve().parent == self.ckpt_dir.resolve()
        self.last_saved, self.last_save_time, self.last_eval_step = (p.step if own else -1), self.clock(), -1
        self.session_tokens, self.session_train_s = 0, 0.0
        self.last_log = (p.train_seconds, p.step)  # train seconds and step of the previous log line

    def _stop_check(self, max_steps: int, micro: list[dict[str, torch.Tensor]]) -> tuple[Optional[str], float]:
        """(why to stop before the next step or None, the next step's unmasked targets over all ranks).

        Writes a checkpoint first when one is due by the clock. Every rank must agree on stopping and
        saving: rank 0 decides, and one small all-reduce (a sum: only rank 0 sets the flags) shares
        the decision together with the target count. It goes over the gloo control group, on host
        numbers: the host never waits for the GPU here. In one process it is host-side bookkeeping.
        """
        t, info, p, budget = self.config.training, self.dist, self.progress, self.budget
        over_budget = info.is_main and budget.should_stop(val_batches=self.val.n_batches, test_batches=self.test.n_batches)
        save_due = info.is_main and self.clock() - self.last_save_time >= t.checkpoint_minutes * 60
        local_targets = sum(int((b["labels"][:, 1:] != IGNORE_INDEX).sum()) for b in micro)  # labels still on the host
        over_budget, save_due, targets = D.all_reduce_sum([int(over_budget), int(save_due), local_targets], info)
        if save_due and self.last_saved != p.step and p.step > 0:
            self.save(is_best=False)
        if p.step >= max_steps:
            return ("max_steps" if p.step >= t.max_steps else "stop_at_step"), targets
        if over_budget:
            self.log(f"time budget: stopping at step {p.step} with {format_duration(budget.remaining())} left")
            return "time_budget", targets
        return None, targets

    def _step_or_fall_back(self, micro, targets: float, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """train_step; a compiler failure at the first compiled step switches to the eager model once."""
        try:
            return self.train_step(micro, targets, lr)
        except Exception as exc:
            if not (self.compiled and is_compile_error(exc)):
                raise
            failure = exc
        self.log(f"note: torch.compile failed ({type(failure).__name__}: {str(failure).splitlines()[0][:200]}); "
                 "training eagerly")
        self.compiled, self.model = False, self.ddp if self.ddp is not None else self.raw_model
        self.optimizer.zero_grad(set_to_none=True)
        return self.train_step(micro, targets, lr)

    def train_step(self, micro: list[dict[str, torch.Tensor]], targets: float, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step over the grad_accum micro-batches: (summed loss, grad norm), both still on the device."""
        t, info = self.config.training, self.dist
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        # The loss is a mean over every unmasked target of the global batch: summed per micro-batch and
        # divided by the global count. DDP averages gradients over ranks; the world size turns that back into a sum.
        scale = info.world_size / max(targets, 1.0)
        loss_sum = torch.zeros((), device=info.device)
        try:
            for i, batch in enumerate(micro):
                batch = {k: v.to(info.device, non_blocking=True) for k, v in batch.items()}
                # No gradient all-reduce on accumulation micro-steps: only the last one syncs.
                last = i == len(micro) - 1
                with self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext():
                    with self.precision.autocast():
                        _, loss = self.model(batch["input_ids"], batch["labels"], doc_ids=batch.get("doc_ids"),
                                             position_ids=batch.get("position_ids"))
                    # fp16: the scaler multiplies the loss so small gradients survive; unscaled before clipping.
                    self.scaler.scale(loss * scale).backward()
                loss_sum += loss.detach()
        except torch.cuda.OutOfMemoryError:
            raise UserError(oom_message(batch_size=t.batch_size, seq_len=self.plan.model_args.context_len,
                                        preset=self.config.model.preset, precision=self.precision.name,
                                        auto=t.auto_batch_size)) from None
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(),
                                                   t.grad_clip if t.grad_clip > 0 else float("inf"))
        # A non-finite gradient norm: no update at all (too many in a row stop the run), decided on the device.
        with self.guard.update_unless_nonfinite(self.optimizer, grad_norm, self.scaler) as update:
            if update:
                self.scaler.step(self.optimizer)  # skipped by the scaler when fp16 gradients overflowed
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, grad_norm

    def _count_step(self, seconds: float) -> None:
        t, p = self.config.training, self.progress
        p.step += 1
        p.data_position += t.batch_size * self.dist.world_size * t.grad_accum
        p.tokens_seen += self.tokens_per_step
        p.train_seconds += seconds
        self.session_tokens += self.tokens_per_step
        self.session_train_s += seconds
        self.budget.record_step(seconds)
        if self.bar is not None:
            self.bar.update(1)

    def _log_step(self, loss_sum: torch.Tensor, targets: float, lr: float, grad_norm: torch.Tensor) -> None:
        p = self.progress
        # .item() waits for the device: only on logging steps.
        (total,) = D.all_reduce_sum([loss_sum.item()], self.dist)
        self.guard.check(p.step)  # the host waited for the device above: reading the guard's counts is free
        p.last_loss = total / max(targets, 1.0)
        # Throughput of the training steps alone (evals and checkpoints in between excluded).
        last_train_s, last_step = self.last_log
        tok_s = (p.step - last_step) * self.tokens_per_step / max(p.train_seconds - last_train_s, 1e-9)
        self.last_log = (p.train_seconds, p.step)
        self._report_train(lr, float(grad_norm), tok_s, self.clock())

    def _report_train(self, lr: float, grad_norm: float, tok_s: float, now: float) -> None:
        p, t = self.progress, self.config.training
        if not self.dist.is_main:
            return
        used = mfu(tok_s, self.flops_per_token, self.peak_flops, self.dist.world_size)
        self.metrics.write({"step": p.step, "loss": p.last_loss, "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tok_s,
                            "mfu": used, "tokens_seen": p.tokens_seen, "elapsed_s": now - self.session_start})
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{p.last_loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:,.0f}")
        else:
            mfu_text = f" | mfu {100 * used:.1f}%" if used is not None else ""
            self.log(f"step {p.step}/{t.max_steps} | loss {p.last_loss:.4f} | lr {lr:.2e} | grad {grad_norm:.3f} "
                     f"| {tok_s:,.0f} tok/s{mfu_text} | {format_duration(now - self.session_start)}")

    def _validate(self) -> bool:
        """The periodic validation; whether it is the best so far."""
        p = self.progress
        p.last_val = self.eval_and_report("val")
        self.last_eval_step = p.step
        is_best = p.last_val < p.best_val
        p.best_val = min(p.best_val, p.last_val)
        return is_best

    # --- evaluation, samples, checkpoints --------------------------------------------------------
    def eval_and_report(self, which: str) -> float:
        step, started = self.progress.step, self.clock()
        eval_set: EvalSet = getattr(self, which)
        loss = evaluate(self.raw_model, eval_set, self.precision, self.dist)
        seconds = self.clock() - started
        if self.dist.is_main:
            self.metrics.write(eval_record(which, step, loss, seconds))
            sliding = " (sliding window)" if eval_set.sliding else ""
            self.log(f"eval step {step}: {which} loss {loss:.4f}, perplexity {fmt(perplexity(loss), 2)}{sliding}")
            if which == "val":
                plot_loss(self.metrics.curve, self.output_dir / LOSS_PNG)
                write_samples(self.sentencepiece, self.raw_model, self.output_dir / SAMPLES, step, t=self.config.training,
                              precision=self.precision, prefix=self.prompt_prefix, eos_id=self.eos_id)
                write_partial_summary(self.output_dir / SUMMARY, build_summary(self, "running", None), loss)
        if which == "val":
            self.budget.record_eval(seconds, self.val.n_batches, self.clock() - started - seconds)
        return loss

    def time_for(self, batches: int, *, extras: bool) -> bool:
        """Whether an evaluation of `batches` (with its plot and samples) still fits the budget (rank 0 decides for all)."""
        budget = self.budget
        ok = self.dist.is_main and (budget.deadline is None
                                    or budget.remaining() > 1.2 * budget.eval_estimate(batches, extras=extras) + budget.margin)
        return bool(D.all_reduce_max([int(ok)], self.dist)[0])

    def save(self, *, is_best: bool) -> None:
        p, started = self.progress, self.clock()
        if self.guard.blocks_save(p.step):
            return
        rng = D.gather_objects(rng_state(self.dist.device), self.dist)  # every rank's dropout stream
        if self.dist.is_main:
            require_finite_weights(self.raw_model, p.step)  # NaN weights never replace the last good checkpoint
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
            self.log(f"checkpoint {path.name}{' (best)' if is_best else ''} in {self.clock() - started:.1f}s")
        self.last_saved, self.last_save_time = p.step, self.clock()
        self.budget.record_checkpoint(self.clock() - started)

    # --- the end: a checkpoint first (it is what the time budget protects), then the final evals ---
    def finish(self, stop_reason: str) -> dict[str, Any]:
        p = self.progress
        self._close_bar()
        if self.last_saved != p.step and p.step > 0:
            self.save(is_best=False)
        self._final_validation()
        test_loss = None
        if self.test.n_batches:
            if self.time_for(self.test.n_batches, extras=False):
                test_loss = self.eval_and_report("test")
            else:
                self.log("note: test evaluation skipped: not enough of the time budget left")
        summary = build_summary(self, stop_reason, test_loss)
        if self.dist.is_main:
            write_summary(self.output_dir / SUMMARY, summary)
            self.log(f"done: {stop_reason} at step {p.step}; val loss {fmt(p.last_val)}, test loss {fmt(test_loss)}; "
                     f"outputs in {self.output_dir}")
        return summary

    def _final_validation(self) -> None:
        p = self.progress
        if not self.val.n_batches or self.last_eval_step == p.step:
            return
        if not self.time_for(self.val.n_batches, extras=True):
            self.log("note: final validation skipped: not enough of the time budget left")
            return
        p.last_val = self.eval_and_report("val")
        if p.last_val < p.best_val:
            p.best_val = p.last_val
            if self.dist.is_main and self.last_saved == p.step:
                ckpt.mark_best(self.ckpt_dir / f"{ckpt.step_name(p.step)}.pt", p.last_val)

    def _open_bar(self) -> None:
        if self.options.show_progress and self.dist.is_main:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.config.training.max_steps, initial=self.progress.step, desc="train",
                            dynamic_ncols=True)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
