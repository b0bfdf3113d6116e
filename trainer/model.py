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
from torch.utils.checkpoint import checkpoint

from fastpack.errors import UserError

from trainer.attention import DocumentMask, attend
from trainer.config import ModelConfig
from trainer.fused import IGNORE_INDEX, linear_cross_entropy, rms_norm, rotate_qk, silu_mul


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
        return rms_norm(x.float(), self.weight, self.eps).type_as(x)


def rotary_tables(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos [length, head_dim] and sin [length, head_dim / 2] of every position's angles, in the rotate-half
    layout (GPT-NeoX / Llama): dimension i and i + head_dim / 2 turn by the same angle (see fused.rotate_qk)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)
    return torch.cat([angles, angles], dim=-1).cos().float(), angles.sin().float()


class KVCache:
    """Keys and values of the tokens seen so far, per layer: sampling feeds one new token per forward."""

    def __init__(self, n_layer: int, context_len: int) -> None:
        self.n_layer, self.context_len = n_layer, context_len
        self.k: Optional[torch.Tensor] = None  # [n_layer, B, H, context_len, D], allocated at the first update
        self.v: Optional[torch.Tensor] = None
        self.length = 0  # tokens already in the cache

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        """Store this forward's k, v [B, H, T, D] after the cached ones; all keys and values so far."""
        if self.k is None:
            shape = (self.n_layer, *k.shape[:2], self.context_len, k.shape[-1])
            self.k, self.v = k.new_zeros(shape), v.new_zeros(shape)
        start, end = self.length, self.length + k.shape[2]
        self.k[layer, :, :, start:end], self.v[layer, :, :, start:end] = k, v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class Attention(nn.Module):
    def __init__(self, args: ModelArgs, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.n_head = args.n_head
        self.head_dim = args.d_model // args.n_head
        self.qkv = nn.Linear(args.d_model, 3 * args.d_model, bias=False)
        self.proj = nn.Linear(args.d_model, args.d_model, bias=False)
        self.dropout = args.dropout

    def forward(self, x, cos, sin, attn_mask: Optional[DocumentMask], cache: Optional[KVCache] = None) -> torch.Tensor:
        B, T, C = x.shape
        qk, v = self.qkv(x).view(B, T, 3, self.n_head, self.head_dim).split([2, 1], dim=2)
        # q and k rotate together, in the [B, T, H, D] layout SDPA's kernels read (as transposed views; a
        # contiguous [B, H, T, D] makes the CPU kernel twice as slow).
        q, k = (t.transpose(1, 2) for t in rotate_qk(qk, cos, sin))
        v = v.squeeze(2).transpose(1, 2)
        dropout = self.dropout if self.training else 0.0
        if cache is not None and cache.length > 0:
            start = cache.length
            k, v = cache.update(self.layer, k, v)
            # Query i (absolute position start + i) sees every cached key and the new ones up to itself.
            visible = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=visible)
        else:
            if cache is not None:
                cache.update(self.layer, k, v)
            y = attend(q, k, v, attn_mask, dropout)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class SwiGLU(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.gate = nn.Linear(args.d_model, args.d_ff, bias=False)
        self.up = nn.Linear(args.d_model, args.d_ff, bias=False)
        self.down = nn.Linear(args.d_ff, args.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(silu_mul(self.gate(x), self.up(x)))


class Block(nn.Module):
    def __init__(self, args: ModelArgs, layer: int = 0) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(args.d_model, args.norm_eps)
        self.attn = Attention(args, layer)
        self.mlp_norm = RMSNorm(args.d_model, args.norm_eps)
        self.mlp = SwiGLU(args)
        self.drop = nn.Dropout(args.dropout)

    def forward(self, x, cos, sin, attn_mask, cache: Optional[KVCache] = None):
        x = x + self.drop(self.attn(self.attn_norm(x), cos, sin, attn_mask, cache))
        return x + self.drop(self.mlp(self.mlp_norm(x)))


class GPT(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.embed = nn.Embedding(args.vocab_size, args.d_model)
        self.drop = nn.Dropout(args.dropout)
        self.blocks = nn.ModuleList(Block(args, layer) for layer in range(args.n_layer))
        self.attention_kernel = "dense"  # document attention's kernel: "dense" or "flex" (trainer.attention)
        self.activation_checkpointing = False  # recompute each block's activations in backward: memory for time
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
        """Training FLOPs per token (forward + backward): 6N + attention's 12 * L * d * T (trainer.mfu)."""
        from trainer.mfu import flops_per_token

        return flops_per_token(self.num_parameters(), self.args.n_layer, self.args.d_model, seq_len)

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: Optional[torch.Tensor] = None,
        *,
        doc_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        cache: Optional[KVCache] = None,
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Logits [B, T, V] without labels; with labels, no logits (None) and the summed loss over unmasked
        next-token targets (a float32 scalar), computed chunk by chunk so the [B, T, V] logits never exist whole.

        The *sum* (not the mean) is returned so the caller can divide by the token count of the
        whole step: micro-batches and ranks with different numbers of masked labels then weigh
        each token equally. With a `cache` (sampling), the tokens continue the cached ones.
        """
        B, T = input_ids.shape
        start = cache.length if cache is not None else 0
        if start + T > self.args.context_len:
            raise ValueError(f"sequence of {start + T} tokens exceeds the context length {self.args.context_len}")
        # cos/sin broadcast over [B, T, 2 (q and k), H, D].
        if position_ids is None:
            cos, sin = self.rope_cos[start : start + T, None, None], self.rope_sin[start : start + T, None, None]
        else:
            cos, sin = self.rope_cos[position_ids][:, :, None, None], self.rope_sin[position_ids][:, :, None, None]
        x = self.drop(self.embed(input_ids))
        # Rotary in the activations' dtype (bf16/fp16 under autocast): q, k and v reach SDPA in one dtype,
        # which its fused kernels need. Cast once here, not in every layer.
        if torch.is_autocast_enabled(x.device.type):
            cos, sin = (t.to(torch.get_autocast_dtype(x.device.type)) for t in (cos, sin))
        attn_mask = None if doc_ids is None else DocumentMask(doc_ids, self.attention_kernel)
        for block in self.blocks:
            if self.activation_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(block, x, cos, sin, attn_mask, use_reentrant=False)
            else:
                x = block(x, cos, sin, attn_mask, cache)
        if cache is not None:
            cache.length += T
        x = self.norm(x)
        if labels is None:
            return F.linear(x, self.embed.weight), None  # tied output embedding
        # Shift the labels, not the logits. The last position has no next token (its target is ignored).
        targets = F.pad(labels[:, 1:], (0, 1), value=IGNORE_INDEX)
        return None, linear_cross_entropy(x.view(B * T, -1), self.embed.weight, targets.reshape(-1)).float()


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
    use_cache: bool = True,
) -> list[int]:
    """Sample continuation ids (prompt excluded); stops at eos. Uses `generator`, never the global RNG.

    With `use_cache` each step feeds only the new token (keys and values of the earlier ones are
    kept); once the text outgrows the context, the window slides and every step runs the whole
    cropped window, as without the cache (positions restart with the window).
    """
    was_training = model.training
    model.eval()
    device = model.embed.weight.device
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=device)
    context = model.args.context_len
    cache = KVCache(model.args.n_layer, context) if use_cache and 0 < ids.shape[1] <= context else None
    out: list[int] = []
    for _ in range(max_new_tokens):
        if cache is not None and ids.shape[1] > context:
            cache = None  # the window slides from here
        if cache is not None:
            logits, _ = model(ids[:, cache.length:], cache=cache)  # the tokens the cache has not seen
        else:
            logits, _ = model(ids[:, -context:])
        next_id = _pick(logits[0, -1].float(), temperature, top_k, generator)
        if eos_id is not None and next_id == eos_id:
            break
        out.append(next_id)
        ids = torch.cat([ids, torch.tensor([[next_id]], device=device)], dim=1)
    model.train(was_training)
    return out


def _pick(logits: torch.Tensor, temperature: float, top_k: int, generator: Optional[torch.Generator]) -> int:
    """The next token from the last position's logits: greedy at temperature 0, else top-k sampling."""
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k and top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1).cpu()
    return int(torch.multinomial(probs, 1, generator=generator))
