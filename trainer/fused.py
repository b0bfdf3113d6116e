"""Pieces of the model with hand-written backward passes, each tested against plain PyTorch.

- `linear_cross_entropy`: the output layer and the loss, chunk by chunk, with the gradients computed
  in the forward (as Liger-Kernel's fused linear cross-entropy does). The [N, V] logits never exist
  whole: at 16 x 1024 tokens and a 32k vocabulary the plain loss holds about 7 GB (the logits, their
  fp32 copy, the log-softmax kept for backward and its gradient); this holds one chunk of
  `CHUNK_BYTES` and the two gradients. Same matmuls as the plain loss, none recomputed. Under fp16
  the softmax gradients reach those matmuls unscaled (the plain loss's carry the loss scale / tokens):
  probabilities below fp16's smallest subnormal (6e-8) count as zero there, as in Liger's.
- `rms_norm`: torch 2.13 has no fused CPU kernel for RMSNorm; its composite runs about 20 elementwise
  passes forward and backward, this one 9. On other devices `F.rms_norm` (fused) is used.
- `rotate_qk`: rotary on q and k stored side by side; two passes instead of a roll and three, and the
  backward writes both gradients into one buffer.
- `silu_mul`: SwiGLU's silu(gate) * up keeping two [tokens, d_ff] activations for backward instead of
  three (silu(gate) is recomputed: one pass), and one fresh buffer less each way.

All of them trace into one graph under torch.compile (no `out=` on views: Dynamo breaks the graph there).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100
CHUNK_BYTES = 1 << 28  # fp32 logits of one chunk: 256 MiB (2048 rows at a 32k vocabulary)


def chunk_rows(vocab_size: int) -> int:
    """Rows of logits per chunk: the largest power of two within CHUNK_BYTES."""
    rows = max(1, CHUNK_BYTES // (4 * vocab_size))
    return 1 << (rows.bit_length() - 1)


class LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, rows: int,
                want_grad: bool) -> torch.Tensor:
        # Under autocast the matmuls below run in its dtype (bf16/fp16); the softmax and the sums run in fp32.
        acc = torch.promote_types(h.dtype, torch.float32)
        loss = torch.zeros((), dtype=acc, device=h.device)
        grad_h = torch.empty(h.shape, dtype=acc, device=h.device) if want_grad else None
        grad_w = None
        for start in range(0, h.shape[0], rows):
            part = slice(start, start + rows)
            chunk_loss, chunk_grad_w = _chunk_loss(h[part], weight, targets[part], acc, grad_h[part] if want_grad else None)
            loss += chunk_loss
            if chunk_grad_w is not None:  # the first chunk's is the buffer (no zeros to add to)
                grad_w = chunk_grad_w.to(acc) if grad_w is None else grad_w.add_(chunk_grad_w)
        if want_grad:
            ctx.save_for_backward(grad_h, grad_w)
            ctx.dtypes = h.dtype, weight.dtype
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        h_dtype, w_dtype = ctx.dtypes
        return (grad_h * grad_loss).to(h_dtype), (grad_w * grad_loss).to(w_dtype), None, None, None


def _chunk_loss(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, acc: torch.dtype,
                grad_h: Optional[torch.Tensor]) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """One chunk's summed loss and, with grad_h (this chunk's rows, written here), its weight gradient.
    A function of its own so that the chunk's logits are freed before the next chunk's exist."""
    logits = F.linear(h, weight).to(acc)
    valid = (targets != IGNORE_INDEX)[:, None]
    y = torch.where(valid, targets[:, None], 0)
    picked = logits.gather(1, y)  # the target's logit, read before the logits are overwritten
    peak = logits.amax(dim=1, keepdim=True)
    exp = logits.sub_(peak).exp_()  # in place: one [rows, V] buffer per chunk
    total = exp.sum(dim=1, keepdim=True)
    if grad_h is not None:
        # d loss / d logits = softmax - one_hot(target), zero on ignored rows.
        grad_logits = exp.mul_(valid / total).scatter_add_(1, y, -valid.to(acc))
        if torch.is_autocast_enabled(h.device.type):  # cast once for both matmuls, not once in each
            grad_logits = grad_logits.to(torch.get_autocast_dtype(h.device.type))
        grad_h.copy_(grad_logits @ weight)
        grad_w = grad_logits.T @ h
    loss = torch.where(valid, peak + total.log() - picked, 0.0).sum()  # logsumexp - the target's logit
    return loss, grad_w if grad_h is not None else None


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, rows: int = 0) -> torch.Tensor:
    """sum over rows of cross_entropy(h @ weight.T, targets), IGNORE_INDEX rows left out; h [N, d], weight [V, d]."""
    # Gradients only where backward can come (ctx.needs_input_grad says True even under no_grad).
    want_grad = torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad)
    return LinearCrossEntropy.apply(h, weight, targets, rows or chunk_rows(weight.shape[0]), want_grad)


class RMSNormCPU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        rstd = torch.linalg.vecdot(x, x).unsqueeze_(-1).div_(x.shape[-1]).add_(eps).rsqrt_()
        ctx.save_for_backward(x, weight, rstd)
        return torch.mul(x, rstd).mul_(weight)

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        x, weight, rstd = ctx.saved_tensors
        d = x.shape[-1]
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = (grad_y * x).reshape(-1, d).T @ rstd.reshape(-1)
        # y = x * rstd * w: dx = rstd * g - x * rstd^3 * <g, x> / d, with g = grad_y * w.
        g = grad_y * weight
        coef = torch.linalg.vecdot(g, x).unsqueeze_(-1).mul_(rstd.pow(3)).div_(-d)
        return g.mul_(rstd).addcmul_(x, coef), grad_w, None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    if x.device.type == "cpu":
        return RMSNormCPU.apply(x, weight, eps)
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


class SiluMul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(gate, up)  # not silu(gate): recomputed in backward, one activation less kept
        return F.silu(gate).mul_(up)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        gate, up = ctx.saved_tensors
        grad_silu = grad_out * up
        grad_gate = torch.ops.aten.silu_backward.grad_input(grad_silu, gate, grad_input=grad_silu)  # in place
        return grad_gate, F.silu(gate).mul_(grad_out)


def silu_mul(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """SwiGLU's silu(gate) * up."""
    return SiluMul.apply(gate, up)


class RotateQK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qk: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        ctx.save_for_backward(cos, sin)
        half = qk.shape[-1] // 2
        out = qk * cos
        out[..., :half].addcmul_(qk[..., half:], sin, value=-1)
        out[..., half:].addcmul_(qk[..., :half], sin)
        return out[:, :, 0], out[:, :, 1]

    @staticmethod
    def backward(ctx, grad_q: torch.Tensor, grad_k: torch.Tensor):
        cos, sin = ctx.saved_tensors
        half = grad_q.shape[-1] // 2
        grad = torch.stack([grad_q, grad_k], 2).mul_(cos)  # the transposed rotation: angle -> -angle
        sin = sin.select(-3, 0)  # without the q/k axis: broadcasts against grad_q
        for i, g in enumerate((grad_q, grad_k)):
            grad[:, :, i, :, :half].addcmul_(g[..., half:], sin)
            grad[:, :, i, :, half:].addcmul_(g[..., :half], sin, value=-1)
        return grad, None, None


def rotate_qk(qk: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotary positions on qk [B, T, 2 (q, k), H, D] in the rotate-half layout (GPT-NeoX / Llama): q and k
    [B, T, H, D]. cos [.., T, 1, 1, D] and sin [.., T, 1, 1, D/2] from `model.rotary_tables`."""
    return RotateQK.apply(qk, cos, sin)
