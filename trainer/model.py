"""A decoder-only transformer in plain PyTorch: rotary positions, RMSNorm, SwiGLU, SDPA, tied embeddings.

Shapes come from `ModelConfig`: a named preset gives every size and an explicit field overrides it.
The vocabulary size comes from tokenizer_info.json unless the config sets one; the context length
from the packed windows (their meta) unless `model.context_len` or `packing.seq_len` is set.

`forward(input_ids, labels=None, *, doc_ids=None, position_ids=None)` follows the Hugging Face
convention: labels are the inputs (padding and masked positions set to -100) and the loss predicts
token t+1 from tokens <= t inside the window. With `doc_ids` (one id per position) attention is
block-diagonal causal: a token sees only earlier tokens of its own document.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from fastpack.errors import UserError

from trainer.config import ModelConfig

IGNORE_INDEX = -100

# n_layer, n_head, d_model (head size 64 for small and base). Parameters at vocab 32000, the tied
# embedding counted once: tiny 2.1M (0.1M without the embedding), small 30.0M, base 123.7M.
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"n_layer": 2, "n_head": 4, "d_model": 64},
    "small": {"n_layer": 10, "n_head": 6, "d_model": 384},
    "base": {"n_layer": 14, "n_head": 12, "d_model": 768},
}


@dataclass(frozen=True, kw_only=True)
class ModelArgs:
    """The resolved shape. The fields of `shape_dict()` must match for a checkpoint to load."""

    vocab_size: int
    n_layer: int
    n_head: int
    d_model: int
    d_ff: int
    context_len: int
    dropout: float = 0.0
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5

    def shape_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("vocab_size", "n_layer", "n_head", "d_model", "d_ff")}

    def to_dict(self) -> dict:
        return asdict(self)


def swiglu_hidden(d_model: int) -> int:
    """8/3 * d_model (same parameters as a 4x GELU MLP), rounded up to a multiple of 64."""
    return 64 * math.ceil(8 * d_model / 3 / 64)


def resolve_model_args(model: ModelConfig, *, vocab_size: int, context_len: int) -> ModelArgs:
    preset = PRESETS[model.preset]
    n_layer = model.n_layer or preset["n_layer"]
    n_head = model.n_head or preset["n_head"]
    d_model = model.d_model or preset["d_model"]
    if d_model % n_head or (d_model // n_head) % 2:
        raise UserError(f"model: d_model ({d_model}) must be a multiple of n_head ({n_head}) with an even head size (rotary)")
    return ModelArgs(
        vocab_size=model.vocab_size or vocab_size,
        n_layer=n_layer,
        n_head=n_head,
        d_model=d_model,
        d_ff=model.d_ff or swiglu_hidden(d_model),
        context_len=model.context_len or context_len,
        dropout=model.dropout,
        rope_theta=model.rope_theta,
        norm_eps=model.norm_eps,
    )


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32: under fp16 autocast the mean of squares overflows easily.
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


def rotary_tables(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)  # rotate_half layout (GPT-NeoX / Llama)
    return angles.cos().float(), angles.sin().float()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, H, T, D]; cos/sin broadcastable to it."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.n_head = args.n_head
        self.head_dim = args.d_model // args.n_head
        self.qkv = nn.Linear(args.d_model, 3 * args.d_model, bias=False)
        self.proj = nn.Linear(args.d_model, args.d_model, bias=False)
        self.dropout = args.dropout

    def forward(self, x, cos, sin, attn_mask: Optional[torch.Tensor]) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        dropout = self.dropout if self.training else 0.0
        if attn_mask is None:
            # is_causal lets SDPA pick the flash kernel on GPU.
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class SwiGLU(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.gate = nn.Linear(args.d_model, args.d_ff, bias=False)
        self.up = nn.Linear(args.d_model, args.d_ff, bias=False)
        self.down = nn.Linear(args.d_ff, args.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(args.d_model, args.norm_eps)
        self.attn = Attention(args)
        self.mlp_norm = RMSNorm(args.d_model, args.norm_eps)
        self.mlp = SwiGLU(args)
        self.drop = nn.Dropout(args.dropout)

    def forward(self, x, cos, sin, attn_mask):
        x = x + self.drop(self.attn(self.attn_norm(x), cos, sin, attn_mask))
        return x + self.drop(self.mlp(self.mlp_norm(x)))


def document_mask(doc_ids: torch.Tensor) -> torch.Tensor:
    """[B, T] document ids -> [B, 1, T, T] bool: query i may attend key j iff j <= i and same document."""
    T = doc_ids.shape[-1]
    causal = torch.ones(T, T, dtype=torch.bool, device=doc_ids.device).tril()
    same = doc_ids[:, :, None] == doc_ids[:, None, :]
    return (same & causal)[:, None]


class GPT(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.embed = nn.Embedding(args.vocab_size, args.d_model)
        self.drop = nn.Dropout(args.dropout)
        self.blocks = nn.ModuleList(Block(args) for _ in range(args.n_layer))
        self.norm = RMSNorm(args.d_model, args.norm_eps)
        cos, sin = rotary_tables(args.d_model // args.n_head, args.context_len, args.rope_theta)
        # Not persistent: rebuilt from the shape, so checkpoints hold parameters only.
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # GPT-2's scaled init of the projections that write into the residual stream.
        for name, param in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * args.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied output embedding counts once

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward): 6N + attention's 12 * L * d * T (PaLM appendix B)."""
        a = self.args
        return 6 * self.num_parameters() + 12 * a.n_layer * a.d_model * seq_len

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: Optional[torch.Tensor] = None,
        *,
        doc_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Logits [B, T, V] and, with labels, the summed loss over unmasked next-token targets (a float32 scalar).

        The *sum* (not the mean) is returned so the caller can divide by the token count of the
        whole step: micro-batches and ranks with different numbers of masked labels then weigh
        each token equally.
        """
        B, T = input_ids.shape
        if T > self.args.context_len:
            raise ValueError(f"sequence of {T} tokens exceeds the context length {self.args.context_len}")
        if position_ids is None:
            cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        else:
            cos, sin = self.rope_cos[position_ids][:, None], self.rope_sin[position_ids][:, None]
        x = self.drop(self.embed(input_ids))
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        attn_mask = None if doc_ids is None else document_mask(doc_ids)
        for block in self.blocks:
            x = block(x, cos, sin, attn_mask)
        logits = F.linear(self.norm(x), self.embed.weight)  # tied output embedding
        if labels is None:
            return logits, None
        loss = F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
            labels[:, 1:].reshape(-1),
            ignore_index=IGNORE_INDEX,
            reduction="sum",
        )
        return logits, loss


@torch.no_grad()
def generate(
    model: GPT,
    prompt_ids: list[int],
    *,
    max_new_tokens: int,
    temperature: float = 0.8,
    top_k: int = 0,
    eos_id: Optional[int] = None,
    generator: Optional[torch.Generator] = None,
) -> list[int]:
    """Sample continuation ids (prompt excluded); stops at eos. Uses `generator`, never the global RNG."""
    was_training = model.training
    model.eval()
    device = model.embed.weight.device
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    out: list[int] = []
    for _ in range(max_new_tokens):
        logits, _ = model(ids[:, -model.args.context_len:])
        logits = logits[0, -1].float()
        if temperature <= 0:
            next_id = int(logits.argmax())
        else:
            logits = logits / temperature
            if top_k and top_k < logits.numel():
                kth = torch.topk(logits, top_k).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = torch.softmax(logits, dim=-1).cpu()
            next_id = int(torch.multinomial(probs, 1, generator=generator))
        if eos_id is not None and next_id == eos_id:
            break
        out.append(next_id)
        ids = torch.cat([ids, torch.tensor([[next_id]], device=device)], dim=1)
    model.train(was_training)
    return out
