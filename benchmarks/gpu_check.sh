#!/usr/bin/env bash
# The trainer's GPU check (issue 16), prepared for a session with one NVIDIA GPU. From the repo root:
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]          # about 10-15 minutes on an H100 / A100
#
# 1. the training benchmark (small and base presets, seq_len 1024, vs a nanoGPT-style GPT on the same
#    packed windows; document attention flex vs dense; torch.compile on vs off) in the precision `auto`
#    picks (bf16 on cc >= 8.0) and in fp16 with GradScaler forced (as on a T4);
# 2. real training runs through `torchrun --nproc_per_node 1` (NCCL, DDP wrapper) on packed synthetic data:
#    causal, document attention (FlexAttention), and auto_batch_size;
# 3. OUT_DIR/gpu_check.md: one table of all of it, the device named (paste it into benchmarks/README.md).
#
# Environment: PYTHON (default python), QUICK=1 for fewer rounds/steps (a smoke run).
set -euo pipefail
OUT=${1:-/tmp/fastpack-gpu-check}
PY=${PYTHON:-python}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
ROUNDS=5; STEPS=20; TOKENS=20M; MAX_STEPS=100
if [[ "${QUICK:-0}" == 1 ]]; then ROUNDS=2; STEPS=5; TOKENS=4M; MAX_STEPS=30; fi

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
"$PY" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0))" \
    | tee "$OUT/torch.txt"

# 1. the benchmark, in each precision (each run writes its JSON; the table below reads them)
for prec in auto fp16; do
    "$PY" -m pytest benchmarks/ --benchmark -k train -p no:randomly -q --device cuda \
        --bench-train-precision "$prec" --bench-train-rounds "$ROUNDS" --bench-train-steps "$STEPS" \
        --bench-results "$OUT/train-$prec.json" 2>&1 | tee "$OUT/train-$prec.log" || true
done

# 2. real runs under torchrun with one process: NCCL and the DDP wrapper, the loop's MFU log, flex, auto batch
ROOT="$OUT/root"
CONFIG=$("$PY" -m benchmarks.gpu_smoke_root --root "$ROOT" --tokens "$TOKENS" --seq-len 1024 | tail -1)
run() {  # name, extra flags...
    local name=$1; shift
    timeout 900 "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m trainer.train_lm \
        --config "$CONFIG" --output-dir "$OUT/runs/$name" --resume none --max-steps "$MAX_STEPS" \
        --set training.grad_accum=1 --set training.warmup_steps=10 "$@" 2>&1 | tee "$OUT/run-$name.log" || true
}
run small-causal --preset small
run small-documents --preset small --set training.document_attention=true
run base-causal --preset base --set training.batch_size=8
run base-auto-batch --preset base --set training.batch_size=16 --set training.grad_accum=4 --set training.auto_batch_size=true
run small-eager --preset small --set training.compile=false

# 3. the table
"$PY" - "$OUT" <<'PYEOF'
import json, re, sys
from pathlib import Path

out = Path(sys.argv[1])
lines = [f"GPU check: {(out / 'torch.txt').read_text().strip()}", ""]
lines += ["| precision | shape | group | variant | params | step ms | tokens/s | MFU | peak GB |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
ratios = []
for prec in ("auto", "fp16"):
    path = out / f"train-{prec}.json"
    if not path.is_file():
        lines.append(f"| {prec} | (no results: see train-{prec}.log) | | | | | | | |")
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
for log in sorted(out.glob("run-*.log")):
    text = log.read_text(errors="replace")
    steps = [l for l in text.splitlines() if l.startswith("step ")]
    notes = [l for l in text.splitlines() if l.startswith(("DDP over", "document attention", "auto_batch_size", "note: torch.compile", "error"))]
    lines.append(f"- {log.stem[4:]}: {steps[-1] if steps else 'no step line (see the log)'}" + "".join(f"; {n}" for n in notes))
(out / "gpu_check.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
echo "table: $OUT/gpu_check.md"
