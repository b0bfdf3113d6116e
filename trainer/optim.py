"""AdamW with weight decay on the matrices of linear layers only, fused (one kernel; it also takes the
NaN guard's skip flag on the device, trainer.guard)."""
from __future__ import annotations

import torch

from trainer.config import TrainingConfig



def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    # Decay only matrices of linear layers; norms and the (tied) embedding keep their scale.
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.dim() >= 2 and not name.startswith("embed.") else no_decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, t: TrainingConfig, device: torch.device) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, t.weight_decay), lr=t.lr, betas=(t.beta1, t.beta2),
                             fused=device.type in ("cuda", "cpu"))
