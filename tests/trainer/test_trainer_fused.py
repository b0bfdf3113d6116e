"""trainer.fused against plain PyTorch: the chunked loss, the CPU RMSNorm, the rotary and SwiGLU's product,
values and gradients."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.fused import IGNORE_INDEX, chunk_rows, linear_cross_entropy, rms_norm, rotate_qk, silu_mul
from trainer.model import GPT, ModelArgs, rotary_tables


def plain_loss(h, weight, targets):
    return F.cross_entropy(F.linear(h, weight), targets, ignore_index=IGNORE_INDEX, reduction="sum")


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), vocab=st.integers(2, 30), d=st.integers(1, 9), rows=st.integers(1, 45),
       ignored=st.integers(0, 3), seed=st.integers(0, 2**16), scale=st.floats(0.01, 100.0))
def test_linear_cross_entropy_equals_the_plain_loss_and_its_gradients(n, vocab, d, rows, ignored, seed, scale):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(vocab, d, dtype=torch.float64, generator=g, requires_grad=True)
    targets = torch.randint(0, vocab, (n,), generator=g)
    if ignored:
        targets[::ignored + 1] = IGNORE_INDEX  # every (ignored+1)-th row has no target
    fused = linear_cross_entropy(h, weight, targets, rows)
    plain = plain_loss(h, weight, targets)
    assert torch.allclose(fused, plain, rtol=1e-12, atol=1e-12)
    # The caller scales the loss (1 / targets, the fp16 loss scale): the gradients follow.
    fused_grads = torch.autograd.grad(fused * scale, (h, weight))
    plain_grads = torch.autograd.grad(plain * scale, (h, weight))
    for a, b in zip(fused_grads, plain_grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


def test_linear_cross_entropy_under_bf16_autocast_is_close_to_the_plain_loss():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(64, 16, generator=g, requires_grad=True)
    weight = (0.3 * torch.randn(100, 16, generator=g)).requires_grad_()
    targets = torch.randint(0, 100, (64,), generator=g)
    results = []
    for loss_fn in (lambda: linear_cross_entropy(h, weight, targets, 16), lambda: plain_loss(h, weight, targets)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_fn()
        results.append((loss.float(), torch.autograd.grad(loss, (h, weight))))
    (fused, fused_grads), (plain, plain_grads) = results
    assert fused.dtype == torch.float32 and math.isclose(fused.item(), plain.item(), rel_tol=1e-2)
    for a, b in zip(fused_grads, plain_grads):
        assert a.dtype == torch.float32 and torch.allclose(a, b, rtol=0.05, atol=0.02)


class LargestOutput(torch.overrides.TorchFunctionMode):
    """The element count of the largest tensor any torch call returns (the chunked loss must never build [N, V])."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_the_logits_never_exist_whole():
    n, vocab, d, rows = 96, 500, 8, 32
    h = torch.randn(n, d, requires_grad=True)
    weight = torch.randn(vocab, d, requires_grad=True)
    targets = torch.randint(0, vocab, (n,))
    for loss_fn, bound in ((lambda: linear_cross_entropy(h, weight, targets, rows), rows * vocab),
                           (lambda: plain_loss(h, weight, targets), n * vocab)):
        with LargestOutput() as seen:
            loss_fn().backward()
        assert seen.largest == bound  # the plain loss builds [n, V]: the check can fail


def test_without_grad_the_loss_builds_no_gradients():
    h, weight = torch.randn(10, 4, requires_grad=True), torch.randn(7, 4, requires_grad=True)
    targets = torch.randint(0, 7, (10,))
    with torch.no_grad(), LargestOutput() as seen:
        loss = linear_cross_entropy(h, weight, targets, 5)
    assert not loss.requires_grad and math.isclose(loss.item(), plain_loss(h, weight, targets).item(), rel_tol=1e-6)
    assert seen.largest == 5 * 7  # no [N, d] or [V, d] gradient buffers


def test_chunk_rows_keep_a_chunk_of_fp32_logits_within_the_budget():
    assert chunk_rows(32000) == 2048 and chunk_rows(50) == 1 << 20 and chunk_rows(2**30) == 1


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), d=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_cpu_rms_norm_equals_torch_rms_norm_and_its_gradients(shape, d, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, d, dtype=torch.float64, generator=g, requires_grad=True)
    weight = torch.randn(d, dtype=torch.float64, generator=g, requires_grad=True)
    grad_y = torch.randn(*shape, d, dtype=torch.float64, generator=g)
    ours = rms_norm(x, weight, 1e-5)
    plain = F.rms_norm(x, (d,), weight, 1e-5)
    assert torch.allclose(ours, plain, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(ours, (x, weight), grad_y), torch.autograd.grad(plain, (x, weight), grad_y)):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)


def rotate_half_by_hand(x: torch.Tensor, positions: torch.Tensor, theta: float) -> torch.Tensor:
    """x [B, T, ..., D] at positions [B, T]: dimension i and i + D/2 turned by position / theta^(2i/D)."""
    D, half = x.shape[-1], x.shape[-1] // 2
    out = torch.empty_like(x)
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            for i in range(half):
                angle = int(positions[b, t]) / theta ** (2 * i / D)
                x1, x2 = x[b, t, ..., i], x[b, t, ..., i + half]
                out[b, t, ..., i] = x1 * math.cos(angle) - x2 * math.sin(angle)
                out[b, t, ..., i + half] = x2 * math.cos(angle) + x1 * math.sin(angle)
    return out


@pytest.mark.parametrize("restarted", [False, True], ids=["window positions", "positions restarted per document"])
def test_rotate_qk_equals_the_rotate_half_formula_and_its_gradient(restarted):
    B, T, H, D, theta = 2, 6, 3, 8, 10000.0
    qk = torch.randn(B, T, 2, H, D, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    cos, sin = (t.double() for t in rotary_tables(D, T, theta))
    if restarted:
        positions = torch.tensor([[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 4, 5]])
        cos, sin = cos[positions][:, :, None, None], sin[positions][:, :, None, None]
    else:
        positions = torch.arange(T).expand(B, T)
        cos, sin = cos[:, None, None], sin[:, None, None]
    q, k = rotate_qk(qk, cos, sin)
    expected = rotate_half_by_hand(qk.detach(), positions, theta)
    assert torch.allclose(torch.stack([q, k], 2), expected, rtol=0, atol=1e-6)  # the model's tables are fp32
    assert torch.autograd.gradcheck(lambda x: rotate_qk(x, cos, sin), (qk,))


def test_the_model_traces_into_one_graph_for_torch_compile():
    # torch.compile is the CUDA default: a graph break there would split the step and cost speed on the GPU.
    model = GPT(ModelArgs(vocab_size=50, n_layer=2, n_head=2, d_model=16, d_ff=32, context_len=16))
    ids = torch.randint(0, 50, (2, 16))
    doc_ids = torch.tensor([[0] * 5 + [1] * 11] * 2)
    positions = torch.tensor([list(range(5)) + list(range(11))] * 2)
    for kwargs in ({}, {"doc_ids": doc_ids, "position_ids": positions}):
        explained = torch._dynamo.explain(model)(ids, ids, **kwargs)
        assert explained.graph_break_count == 0, [str(b.reason)[:200] for b in explained.break_reasons]
    torch._dynamo.reset()


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=3), seed=st.integers(0, 2**16))
def test_silu_mul_equals_the_plain_swiglu_product_and_its_gradients(shape, seed):
    g = torch.Generator().manual_seed(seed)
    gate, up = (torch.randn(*shape, dtype=torch.float64, generator=g, requires_grad=True) for _ in range(2))
    grad_out = torch.randn(*shape, dtype=torch.float64, generator=g)
    ours, plain = silu_mul(gate, up), F.silu(gate) * up
    assert torch.allclose(ours, plain, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(ours, (gate, up), grad_out), torch.autograd.grad(plain, (gate, up), grad_out)):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)
