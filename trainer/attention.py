"""Attention kernels: plain causal SDPA, and document attention (a token sees only earlier tokens of its own document).

Document attention has two implementations, chosen once per run (`training.attention_kernel`):

- `flex`: FlexAttention (`torch.nn.attention.flex_attention`) with a block mask built from the
  window's document ids. Blocks no query of a document touches are skipped, and no [B,1,T,T]
  tensor is built, so the cost stays that of causal attention or less. Needs a CUDA device:
  PyTorch 2.13 runs flex_attention's forward on CPU but not its backward. It has no dropout.
- `dense`: a [B,1,T,T] boolean mask handed to SDPA. Works everywhere, but a mask keeps SDPA off
  its flash kernel and costs O(T^2) memory per window.

`auto` takes flex where it can run (CUDA, this build has it, dropout 0), else dense, and says which.
Positions restart at every document either way (the dataset's `position_ids` drive rotary).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F

def flex_attention_available() -> bool:
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def choose_kernel(requested: str, *, device_type: str, dropout: float) -> tuple[str, str]:
    """(`flex` | `dense`, the reason, for the log) for document attention on this device."""
    if requested == "dense":
        return "dense", "dense mask (training.attention_kernel=dense)"
    problems = []
    if not flex_attention_available():
        problems.append("this PyTorch build has no FlexAttention")
    if device_type != "cuda":
        problems.append(f"FlexAttention has no backward on {device_type}")
    if dropout > 0:
        problems.append("FlexAttention has no attention dropout")
    if not problems:
        return "flex", "FlexAttention block mask"
    if requested == "flex":
        from fastpack.errors import UserError

        raise UserError(f"training.attention_kernel=flex: {'; '.join(problems)}; use auto or dense")
    return "dense", f"dense mask ({'; '.join(problems)})"


def dense_document_mask(doc_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] document ids -> [B, 1, T, T] bool: query i may attend key j iff j <= i and same document."""
    T = doc_ids.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=doc_ids.device).tril()
    same = doc_ids[:, :, None] == doc_ids[:, None, :]
    return (same & causal)[:, None]


@torch.compiler.disable
def flex_block_mask(doc_ids: torch.Tensor) -> Any:
    """The FlexAttention block mask of causal attention within documents (built outside any compiled graph)."""
    from torch.nn.attention.flex_attention import create_block_mask

    def same_document_causal(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (doc_ids[b, q_idx] == doc_ids[b, kv_idx])

    B, T = doc_ids.shape
    return create_block_mask(same_document_causal, B, None, T, T, device=doc_ids.device)


class DocumentMask:
    """The mask of one batch in the form its kernel wants: a block mask (flex) or a bool tensor (dense)."""

    def __init__(self, doc_ids: torch.Tensor, kernel: str) -> None:
        self.kernel = kernel
        self.mask = flex_block_mask(doc_ids) if kernel == "flex" else dense_document_mask(doc_ids)


_compiled_flex = None


def _flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_mask: Any) -> torch.Tensor:
    from torch.nn.attention.flex_attention import flex_attention

    global _compiled_flex
    if q.device.type != "cuda" or torch.compiler.is_compiling():
        return flex_attention(q, k, v, block_mask=block_mask)  # inside a compiled model: compiled with it
    if _compiled_flex is None:
        # Eager flex_attention is a slow reference; the compiled one generates the fused kernel.
        _compiled_flex = torch.compile(flex_attention, dynamic=False)
    return _compiled_flex(q, k, v, block_mask=block_mask)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[DocumentMask], dropout: float) -> torch.Tensor:
    """[B, H, T, D] q, k, v (one dtype) -> [B, H, T, D]: causal, or within documents when `mask` is given."""
    if mask is None:
        # is_causal lets SDPA pick the flash kernel on GPU.
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
    if mask.kernel == "flex":
        return _flex(q, k, v, mask.mask)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.mask, dropout_p=dropout)
