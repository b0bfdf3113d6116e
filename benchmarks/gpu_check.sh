#!/usr/bin/env bash
# The trainer's GPU check (issue 16): one prepared run for a session with one NVIDIA GPU, sized to about
# 6 minutes (each stage under its own timeout, its results written when it ends) so that a lent GPU's
# 15 minutes hold a rerun of what failed. From the repo root:
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]               # STAGES="1 2 3 4 5" by default
#
# 1. bf16 (what `precision: auto` picks on cc >= 8.0): ours vs a nanoGPT-style GPT, small and base presets,
#    seq_len 1024, on the same packed windows;                                          train-bf16.json
# 2. document attention (FlexAttention and the dense mask) vs plain causal, small and base; train-docs.json
# 3. torch.compile: ours compiled vs eager and vs the nanoGPT-style GPT eager and compiled, small only
#    (each compile costs tens of seconds);                                               train-compile.json
# 4. fp16 + GradScaler forced, as on a T4: ours vs nanoGPT-style, small and base, eager; train-fp16.json
# 5. a real run through `torchrun --nproc_per_node 1` (NCCL, the DDP wrapper): small preset, document
#    attention, compile on (the CUDA default), auto_batch_size, 40 steps: the loop's tok/s and MFU lines;
# then OUT_DIR/gpu_check.md: one table of all of it, the device named (paste it into benchmarks/README.md).
# OUT_DIR keeps 7 files (the table, gpu_check.log with every stage's output, nvidia-smi.txt, the four JSONs);
# the data root and the run's outputs go to WORK_DIR (default /tmp/fastpack-gpu-work).
#
# Environment: PYTHON (default python), STAGES (e.g. "3 5" to rerun two), QUICK=1 (fewer rounds: a smoke run).
set -uo pipefail
OUT=${1:-/tmp/fastpack-gpu-check}
PY=${PYTHON:-python}
STAGES=" ${STAGES:-1 2 3 4 5} "
WORK=${WORK_DIR:-/tmp/fastpack-gpu-work}
LOG="$OUT/gpu_check.log"
mkdir -p "$OUT" "$WORK"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
ROUNDS=5; STEPS=10; TOKENS=8M; MAX_STEPS=40
if [[ "${QUICK:-0}" == 1 ]]; then ROUNDS=2; STEPS=3; TOKENS=4M; MAX_STEPS=10; fi

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
"$PY" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))" \
    2>&1 | tee "$WORK/torch.txt" | tee -a "$LOG"

bench() {  # stage, seconds, name, precision, -k expression
    [[ "$STAGES" == *" $1 "* ]] || return 0
    echo "== stage $1: $3 ($4), at most $2 s" | tee -a "$LOG"
    timeout "$2" "$PY" -m pytest benchmarks/ --benchmark -p no:randomly -q --device cuda -k "$5" \
        --bench-train-precision "$4" --bench-train-rounds "$ROUNDS" --bench-train-steps "$STEPS" \
        --bench-results "$OUT/train-$3.json" 2>&1 | tee -a "$LOG"
}
bench 1 100 bf16 auto "train_vs_reference"
bench 2 120 docs auto "train_document_attention"
bench 3 150 compile auto "train_compile and small"
bench 4 60 fp16 fp16 "train_vs_reference"

if [[ "$STAGES" == *" 5 "* ]]; then
    echo "== stage 5: torchrun --nproc_per_node 1, at most 150 s" | tee -a "$LOG"
    CONFIG=$("$PY" -m benchmarks.gpu_smoke_root --root "$WORK/root" --data-dir "$WORK/data" --tokens "$TOKENS" \
             --seq-len 1024 | tail -1)
    timeout 150 "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m trainer.train_lm \
        --config "$CONFIG" --output-dir "$WORK/runs/small-documents" --resume none --preset small \
        --max-steps "$MAX_STEPS" --set training.grad_accum=1 --set training.warmup_steps=10 \
        --set training.document_attention=true --set training.auto_batch_size=true --set training.log_interval=5 \
        2>&1 | tee "$WORK/run-small-documents.log" | tee -a "$LOG"
fi

# 3. the table
"$PY" - "$OUT" "$WORK" <<'PYEOF'
import json, re, sys
from pathlib import Path

out, work = Path(sys.argv[1]), Path(sys.argv[2])
lines = [f"GPU check: {(work / 'torch.txt').read_text().strip()}", ""]
lines += ["| precision | shape | group | variant | params | step ms | tokens/s | MFU | peak GB |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
ratios = []
for prec in ("bf16", "docs", "compile", "fp16"):
    path = out / f"train-{prec}.json"
    if not path.is_file():
        lines.append(f"| {prec} | (no results: see gpu_check.log) | | | | | | | |")
        continue
    results = json.loads(path.read_text())["results"]
    for r in results.get("train", []):
        mfu = "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        mem = "-" if r["peak_mem_gb"] is None else f"{r['peak_mem_gb']:.2f}"
        lines.append(f"| {r['precision']} | {r['shape']} | {r['group']} | {r['variant']} | {r['params_m']:.1f}M | "
                     f"{r['step_ms']:.1f} | {r['tokens_per_s']:,.0f} | {mfu} | {mem} |")
    ratios += [f"- {prec}: {r['shape']}: {r['comparison']}: {r['median']:.3f}x (paired {r['paired']:.3f}x, best {r['best']:.3f}x)"
               for r in results.get("train_ratios", [])]
    for t in json.loads(path.read_text()).get("targets", []):
        ratios.append(f"- {prec}: {'met' if t['met'] else 'MISSED'}: {t['name']}: {t['value']:.3f} (target {t['limit']})")
lines += ["", "Ratios and targets:", ""] + ratios + ["", "Training runs (torchrun --nproc_per_node 1, last log line with tok/s):", ""]
for log in sorted(work.glob("run-*.log")):
    text = log.read_text(errors="replace")
    steps = [l for l in text.splitlines() if l.startswith("step ")]
    notes = [l for l in text.splitlines() if l.startswith(("DDP over", "document attention", "auto_batch_size", "note: torch.compile", "error"))]
    lines.append(f"- {log.stem[4:]}: {steps[-1] if steps else 'no step line (see the log)'}" + "".join(f"; {n}" for n in notes))
(out / "gpu_check.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "table: $OUT/gpu_check.md"
