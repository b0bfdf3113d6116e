import math

import pytest
import torch

from trainer.config import ModelConfig
from fastpack.errors import UserError
from trainer.attention import dense_document_mask
from trainer.model import GPT, IGNORE_INDEX, PRESETS, generate, resolve_model_args


def tiny(vocab=50, context=16, **overrides):
    torch.manual_seed(0)
    return GPT(resolve_model_args(ModelConfig(preset="tiny", **overrides), vocab_size=vocab, context_len=context)).eval()


def test_preset_sizes_at_vocab_32000():
    counts = {}
    for name in PRESETS:
        args = resolve_model_args(ModelConfig(preset=name), vocab_size=32000, context_len=1024)
        with torch.device("meta"):  # no memory: only shapes
            counts[name] = GPT(args).num_parameters()
    assert counts["tiny"] == 2_154_816
    assert 27e6 < counts["small"] < 33e6  # "~30M"
    assert 110e6 < counts["base"] < 130e6  # "~120M"


def test_explicit_fields_override_the_preset_and_bad_heads_are_refused():
    args = resolve_model_args(ModelConfig(preset="tiny", n_layer=3, d_ff=100, vocab_size=77), vocab_size=50, context_len=8)
    assert (args.n_layer, args.d_ff, args.vocab_size, args.d_model) == (3, 100, 77, 64)
    with pytest.raises(UserError, match="multiple of n_head"):
        resolve_model_args(ModelConfig(preset="tiny", d_model=66), vocab_size=50, context_len=8)


def test_output_embedding_is_tied_and_norms_are_not_decayed():
    model = tiny()
    logits, _ = model(torch.zeros(1, 4, dtype=torch.long))
    assert logits.shape == (1, 4, 50)
    names = [n for n, _ in model.named_parameters()]
    assert "embed.weight" in names and not any("lm_head" in n for n in names)
    from trainer.train_lm import _param_groups

    decay, no_decay = _param_groups(model, 0.1)
    assert model.embed.weight in no_decay["params"] and all(p.dim() == 2 for p in decay["params"])
    assert all(p.dim() == 1 or p is model.embed.weight for p in no_decay["params"])


def test_attention_is_causal():
    model = tiny()
    x = torch.randint(0, 50, (1, 12))
    y = x.clone()
    y[0, 7:] = (y[0, 7:] + 1) % 50
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(y)
    assert torch.allclose(a[0, :7], b[0, :7], atol=1e-6)
    assert not torch.allclose(a[0, 7], b[0, 7], atol=1e-4)


def test_loss_is_the_sum_over_unmasked_next_tokens():
    model = tiny()
    x = torch.randint(0, 50, (2, 10))
    labels = x.clone()
    labels[0, 6:] = IGNORE_INDEX
    with torch.no_grad():
        logits, _ = model(x)
        none, loss = model(x, labels)
    assert none is None  # with labels the [B, T, V] logits are never built
    logp = torch.log_softmax(logits.float(), -1)
    expected = -sum(logp[b, t - 1, x[b, t]] for b in range(2) for t in range(1, 10) if labels[b, t] != IGNORE_INDEX)
    assert math.isclose(loss.item(), expected.item(), rel_tol=1e-5)


def test_document_mask_on_a_hand_built_window():
    # Two documents (3 and 2 tokens) and one padding position.
    mask = dense_document_mask(torch.tensor([[0, 0, 0, 1, 1, 2]]))[0, 0].int().tolist()
    assert mask == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],  # the second document starts fresh
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 1],  # padding attends to itself only (no empty softmax row)
    ]


def test_document_attention_equals_running_each_document_alone():
    model = tiny(context=16)
    a, b = torch.randint(4, 50, (5,)), torch.randint(4, 50, (7,))
    window = torch.cat([a, b, torch.zeros(4, dtype=torch.long)])[None]
    doc_ids = torch.tensor([[0] * 5 + [1] * 7 + [2] * 4])
    position_ids = torch.tensor([list(range(5)) + list(range(7)) + list(range(4))])
    with torch.no_grad():
        packed, _ = model(window, doc_ids=doc_ids, position_ids=position_ids)
        alone_a, _ = model(a[None])
        alone_b, _ = model(b[None])
        plain, _ = model(window)
    assert torch.allclose(packed[0, :5], alone_a[0], atol=1e-5)
    assert torch.allclose(packed[0, 5:12], alone_b[0], atol=1e-5)
    assert not torch.allclose(plain[0, 5:12], alone_b[0], atol=1e-3)  # plain causal attention leaks across documents


def test_generate_leaves_the_global_rng_alone_and_is_reproducible():
    model = tiny()
    before = torch.get_rng_state()
    one = generate(model, [4, 5], max_new_tokens=6, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(1))
    two = generate(model, [4, 5], max_new_tokens=6, temperature=1.0, top_k=5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(before, torch.get_rng_state())
    assert one == two and len(one) == 6 and all(0 <= i < 50 for i in one)
    greedy = generate(model, [4, 5], max_new_tokens=20, temperature=0)  # longer than the context: cropped
    assert len(greedy) == 20
