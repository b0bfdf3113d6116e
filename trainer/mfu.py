"""Model FLOPs utilisation: the model's training FLOP/s over the device's peak dense tensor throughput.

FLOPs per token (forward + backward) = 6 N + 12 L d T (PaLM, appendix B): N the parameters (the
tied embedding counted once: it is the output layer's matmul), and 12 L d T the attention scores
and their weighted sum over a context of T (full T x T, as the convention counts it, although
causal attention needs half). MFU = FLOPs/token * tokens/s / (peak per device * devices).

The peak is looked up by the GPU's exact model family, never by substring ("A10" is not "A100",
"L4" is not "L40S"), and for the precision the run uses: fp16/bf16 on tensor cores, fp32 as TF32
(the trainer enables it) where the GPU has it. A device or precision missing here has no peak:
MFU is then reported as unknown, never as a number against the wrong peak.
"""
from __future__ import annotations

import re
from typing import Optional

TERA = 1e12

# Dense (no sparsity) tensor TFLOPS per GPU from NVIDIA's data sheets. "fp32" is TF32 where the GPU has it.
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "T4": {"fp16": 65.0, "fp32": 8.1},  # Turing: no bf16 tensor cores (bf16 runs emulated)
    "P100": {"fp16": 18.7, "fp32": 9.3},  # PCIe (Kaggle's)
    "V100": {"fp16": 125.0, "fp32": 15.7},  # SXM2
    "V100-PCIE": {"fp16": 112.0, "fp32": 14.0},
    "A10": {"fp16": 125.0, "bf16": 125.0, "fp32": 62.5},
    "A100": {"fp16": 312.0, "bf16": 312.0, "fp32": 156.0},
    "L4": {"fp16": 121.0, "bf16": 121.0, "fp32": 60.0},
    "L40": {"fp16": 181.0, "bf16": 181.0, "fp32": 90.5},
    "L40S": {"fp16": 362.0, "bf16": 362.0, "fp32": 183.0},
    "H100": {"fp16": 989.0, "bf16": 989.0, "fp32": 494.0},  # SXM
    "H100-PCIE": {"fp16": 756.0, "bf16": 756.0, "fp32": 378.0},
    "H100-NVL": {"fp16": 835.0, "bf16": 835.0, "fp32": 418.0},
    "H200": {"fp16": 989.0, "bf16": 989.0, "fp32": 494.0},
}


def gpu_family(device_name: str) -> Optional[str]:
    """The key of PEAK_TFLOPS for a `torch.cuda.get_device_name()`, or None.

    "NVIDIA A100-SXM4-80GB" -> A100, "Tesla T4" -> T4, "NVIDIA L40S" -> L40S, "NVIDIA H100 PCIe"
    -> H100-PCIE, "NVIDIA A10G" -> None (another chip than the A10).
    """
    words = [w for w in re.split(r"[\s\-_]+", device_name.upper()) if w]
    for i, word in enumerate(words):
        if word in PEAK_TFLOPS:
            variant = f"{word}-{words[i + 1]}" if i + 1 < len(words) else ""
            return variant if variant in PEAK_TFLOPS else word
    return None


def peak_flops(device_name: Optional[str], precision: str) -> Optional[float]:
    """Peak FLOP/s of one device at this precision (fp32 | fp16 | bf16); None when unknown (CPU included)."""
    family = gpu_family(device_name) if device_name else None
    if family is None:
        return None
    tflops = PEAK_TFLOPS[family].get(precision)
    return tflops * TERA if tflops is not None else None


def flops_per_token(n_params: int, n_layer: int, d_model: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N + 12 L d T."""
    return 6.0 * n_params + 12.0 * n_layer * d_model * seq_len


def mfu(tokens_per_s: Optional[float], flops_token: float, peak: Optional[float], devices: int = 1) -> Optional[float]:
    """The fraction of peak used (0..1), or None when the peak or the rate is unknown."""
    if not tokens_per_s or not peak:
        return None
    return flops_token * tokens_per_s / (peak * devices)


def describe_peak(device_name: str, precision: str) -> str:
    """One log line saying what MFU is measured against."""
    peak = peak_flops(device_name, precision)
    if peak is None:
        return f"mfu: peak unknown for {device_name} at {precision} (MFU not reported)"
    return f"mfu against {gpu_family(device_name)} {precision} peak {peak / TERA:g} TFLOPS per device"
