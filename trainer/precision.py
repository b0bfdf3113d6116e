"""Precision by compute capability: bf16 on >= 8.0, fp16 with loss scaling below, fp32 on CPU.

A T4 (7.5) reports `torch.cuda.is_bf16_supported() == True`, but its bf16 is emulated and slow,
so `auto` looks at the capability, not at that flag. A GPU this PyTorch build has no kernels for
(Kaggle's P100 is 6.0; current wheels start at 7.0) fails here with the fix, not at the first kernel.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from fastpack.errors import UserError


@dataclass(frozen=True)
class Precision:
    name: str  # fp32 | fp16 | bf16
    device_type: str  # cpu | cuda
    note: str = ""

    @property
    def dtype(self) -> Optional[torch.dtype]:
        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.name)

    @property
    def uses_scaler(self) -> bool:
        return self.name == "fp16"

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> "torch.amp.GradScaler":
        # fp16 gradients underflow without scaling; bf16 has fp32's exponent range and needs none.
        return torch.amp.GradScaler(self.device_type, enabled=self.uses_scaler)


MIN_TORCH = (2, 4)  # F.rms_norm, torch.get_autocast_dtype (trainer.fused); pyproject keeps >= 2.1 so installs stay


def require_torch(version: str = torch.__version__) -> None:
    """An older torch fails here with the fix, not with an AttributeError at the first forward."""
    if tuple(int(x) for x in re.findall(r"\d+", version)[:2]) < MIN_TORCH:
        need = ".".join(map(str, MIN_TORCH))
        raise UserError(f"the trainer needs torch >= {need}; this is torch {version}: pip install 'torch>={need}'")


def gpu_supported(capability: tuple[int, int], arch_list: Sequence[str]) -> bool:
    """Whether the build has SASS for this capability (same major, minor <=) or PTX it can JIT (<=)."""
    if not arch_list:
        return True  # unknown build: let it try
    major, minor = capability
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)(\d)[a-z]?", arch)
        if match is None:
            continue
        kind, a_major, a_minor = match.group(1), int(match.group(2)), int(match.group(3))
        if kind == "sm" and a_major == major and a_minor <= minor:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def choose_precision(
    requested: str, *, device_type: str, capability: Optional[tuple[int, int]] = None,
    gpu_name: str = "GPU", arch_list: Sequence[str] = (),
) -> Precision:
    """The precision to train with; raises UserError for a GPU or a request this build cannot serve."""
    if device_type != "cuda":
        if requested == "fp16":
            raise UserError("--precision fp16 needs a CUDA GPU; on CPU use fp32 (auto) or bf16")
        return Precision("bf16" if requested == "bf16" else "fp32", device_type)
    assert capability is not None
    if not gpu_supported(capability, arch_list):
        cc = f"{capability[0]}.{capability[1]}"
        raise UserError(
            f"{gpu_name} (compute capability {cc}) is not supported by this PyTorch build "
            f"(kernels for {', '.join(arch_list)}); on Kaggle choose the 'GPU T4 x2' accelerator"
        )
    if requested == "auto":
        return Precision("bf16" if capability >= (8, 0) else "fp16", "cuda")
    if requested == "bf16" and capability < (8, 0):
        return Precision("bf16", "cuda", note=f"bf16 on {gpu_name} (cc {capability[0]}.{capability[1]}) is emulated and slow; fp16 is faster")
    return Precision(requested, "cuda")


def precision_for(requested: str, device: torch.device) -> Precision:
    if device.type != "cuda":
        return choose_precision(requested, device_type=device.type)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return choose_precision(
        requested,
        device_type="cuda",
        capability=torch.cuda.get_device_capability(index),
        gpu_name=torch.cuda.get_device_name(index),
        arch_list=torch.cuda.get_arch_list(),
    )
