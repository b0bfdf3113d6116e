"""The GPU-path pieces that CPU can check: attention kernels, dtypes, the loss, the KV cache, activation
checkpointing, the MFU peak table, the warmup of short runs and the micro-batch search."""
import math

import numpy as np

import pytest
import torch
import torch.nn.functional as F

from fastpack.errors import UserError
from trainer import mfu
from trainer.attention import choose_kernel, flex_attention_available
from trainer.batch_size import micro_batch_candidates, oom_message, pick_micro_batch, trial_fits
from trainer.model import GPT, IGNORE_INDEX, ModelArgs, generate
from trainer.schedule import CosineSchedule, warmup_for


def model_of(vocab=50, context=32, n_layer=2, d_model=64, n_head=4, seed=0, **kw):
    torch.manual_seed(seed)
    args = ModelArgs(vocab_size=vocab, n_layer=n_layer, n_head=n_head, d_model=d_model, d_ff=128, context_len=context, **kw)
    return GPT(args)


def segments_to_ids(segments, length):
    """doc_ids and restarted position_ids of a window, as the dataset builds them (padding: one more segment)."""
    doc, pos = [], []
    for i, n in enumerate(list(segments) + [length - sum(segments)]):
        doc += [i] * n
        pos += list(range(n))
    return torch.tensor([doc]), torch.tensor([pos])


# -- attention -------------------------------------------------------------------------------------

@pytest.mark.skipif(not flex_attention_available(), reason="this torch has no FlexAttention")
@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_block_mask_forward_equals_the_dense_mask_on_cpu():
    # FlexAttention runs forward-only on CPU in torch 2.13 (no backward there): compare in eval, no grad.
    model = model_of(context=64).eval()
    windows, docs, positions = [], [], []
    for segs in ([10, 30, 5], [64], [1, 2, 3, 40], [20, 20]):  # the last two end in padding
        d, p = segments_to_ids(segs, 64)
        docs.append(d), positions.append(p)
        windows.append(torch.randint(4, 50, (1, 64)))
    ids, doc_ids, position_ids = torch.cat(windows), torch.cat(docs), torch.cat(positions)
    labels = ids.clone()
    masks = {"doc_ids": doc_ids, "position_ids": position_ids}
    with torch.no_grad():
        dense_logits, dense_loss = model(ids, **masks)[0], model(ids, labels, **masks)[1]
        model.attention_kernel = "flex"
        flex_logits, flex_loss = model(ids, **masks)[0], model(ids, labels, **masks)[1]
    # Tolerance: fp32, different summation order (blockwise online softmax vs one softmax).
    assert torch.allclose(flex_logits, dense_logits, atol=1e-4, rtol=1e-4)
    assert math.isclose(flex_loss.item(), dense_loss.item(), rel_tol=1e-5)
    plain, _ = model(ids)
    assert not torch.allclose(plain, dense_logits, atol=1e-3)  # the masks matter on these windows


def test_kernel_choice_falls_back_to_the_dense_mask_and_says_why():
    kernel, why = choose_kernel("auto", device_type="cpu", dropout=0.0)
    assert kernel == "dense" and "no backward on cpu" in why
    kernel, why = choose_kernel("auto", device_type="cuda", dropout=0.1)
    assert kernel == "dense" and "dropout" in why
    assert choose_kernel("dense", device_type="cuda", dropout=0.0)[0] == "dense"
    if flex_attention_available():
        assert choose_kernel("auto", device_type="cuda", dropout=0.0)[0] == "flex"
    with pytest.raises(UserError, match="attention_kernel=flex: .*use auto or dense"):
        choose_kernel("flex", device_type="cpu", dropout=0.0)


def test_q_k_v_reach_attention_in_one_dtype_under_autocast(monkeypatch):
    seen = []
    original = F.scaled_dot_product_attention

    def recording(q, k, v, *args, **kwargs):
        seen.append((q.dtype, k.dtype, v.dtype))
        return original(q, k, v, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    model = model_of()
    ids = torch.randint(0, 50, (2, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(ids, ids)
        d, p = segments_to_ids([5, 11], 16)
        model(ids, ids, doc_ids=d.expand(2, -1), position_ids=p.expand(2, -1))
    assert len(seen) == 4 and all(dtypes == (torch.bfloat16,) * 3 for dtypes in seen), seen


def test_loss_equals_the_plain_sliced_cross_entropy_and_its_gradients():
    model = model_of()
    ids = torch.randint(0, 50, (3, 20))
    labels = ids.clone()
    labels[1, 12:] = IGNORE_INDEX
    logits, _ = model(ids)
    _, loss = model(ids, labels)
    # The reference: slice the logits (the old, copying way), upcast, sum.
    ref = F.cross_entropy(logits[:, :-1].reshape(-1, 50).float(), labels[:, 1:].reshape(-1),
                          ignore_index=IGNORE_INDEX, reduction="sum")
    assert loss.dtype == torch.float32 and math.isclose(loss.item(), ref.item(), rel_tol=1e-6)
    grads = torch.autograd.grad(loss, [model.embed.weight], retain_graph=True)[0]
    ref_grads = torch.autograd.grad(ref, [model.embed.weight])[0]
    assert torch.allclose(grads, ref_grads, atol=1e-6)


def test_activation_checkpointing_gives_the_same_loss_and_gradients():
    ids = torch.randint(0, 50, (2, 24))
    d, p = segments_to_ids([10, 14], 24)
    results = []
    for checkpointing in (False, True):
        model = model_of(dropout=0.1).train()
        model.activation_checkpointing = checkpointing
        torch.manual_seed(5)  # the same dropout masks: checkpoint replays the RNG state in backward
        _, loss = model(ids, ids, doc_ids=d.expand(2, -1), position_ids=p.expand(2, -1))
        loss.backward()
        results.append((loss.item(), [q.grad.clone() for q in model.parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert loss_a == loss_b
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads_a, grads_b))


def sharp_model(context=16):
    """A random model whose attention is far from uniform (GPT-2 init makes it nearly flat, hiding position bugs)."""
    model = model_of(context=context).eval()
    with torch.no_grad():
        for block in model.blocks:
            block.attn.qkv.weight.mul_(8.0)
    return model


def test_kv_cache_step_logits_equal_the_full_forward():
    model = sharp_model()
    ids = torch.randint(4, 50, (1, 12))
    from trainer.model import KVCache

    cache = KVCache(model.args.n_layer, model.args.context_len)
    with torch.no_grad():
        full, _ = model(ids)
        first, _ = model(ids[:, :5], cache=cache)
        steps = [model(ids[:, i : i + 1], cache=cache)[0][:, -1] for i in range(5, 12)]
    assert torch.allclose(first, full[:, :5], atol=1e-5)
    assert torch.allclose(torch.stack(steps, 1), full[:, 5:], atol=1e-5)


def test_kv_cache_samples_the_same_tokens_as_without_it():
    model = sharp_model()
    for prompt in ([4, 5], [7] * 15, list(range(4, 20))):  # short; one below the context; exactly the context
        cached = generate(model, prompt, max_new_tokens=24, temperature=0, use_cache=True)  # outgrows the context
        plain = generate(model, prompt, max_new_tokens=24, temperature=0, use_cache=False)
        assert cached == plain and len(cached) == 24
    sampled = [generate(model, [4, 5], max_new_tokens=10, temperature=1.0, top_k=5, use_cache=c,
                        generator=torch.Generator().manual_seed(3)) for c in (True, False)]
    assert sampled[0] == sampled[1]


# -- MFU -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, family, bf16_tflops", [
    ("NVIDIA A100-SXM4-80GB", "A100", 312), ("NVIDIA A100-PCIE-40GB", "A100", 312), ("NVIDIA A10", "A10", 125),
    ("NVIDIA L4", "L4", 121), ("NVIDIA L40S", "L40S", 362), ("NVIDIA L40", "L40", 181),
    ("NVIDIA H100 80GB HBM3", "H100", 989), ("NVIDIA H100 PCIe", "H100-PCIE", 756), ("NVIDIA H200", "H200", 989),
])
def test_peak_table_maps_each_family_exactly(name, family, bf16_tflops):
    assert mfu.gpu_family(name) == family
    assert mfu.peak_flops(name, "bf16") == bf16_tflops * 1e12


def test_t4_peak_is_fp16_and_unknown_devices_have_none():
    assert mfu.gpu_family("Tesla T4") == "T4" and mfu.peak_flops("Tesla T4", "fp16") == 65e12
    assert mfu.peak_flops("Tesla T4", "bf16") is None  # emulated on Turing: no tensor-core peak to compare with
    for unknown in ("NVIDIA A10G", "NVIDIA GeForce RTX 4090", "cpu", "", "NVIDIA A1000"):
        assert mfu.peak_flops(unknown, "bf16") is None, unknown
    assert "peak unknown" in mfu.describe_peak("NVIDIA A10G", "bf16")
    assert mfu.mfu(1000.0, 6e9, None) is None


def test_flops_formula_counts_attention_and_mfu_is_the_ratio():
    model = model_of(vocab=50, context=32)
    n = model.num_parameters()
    assert model.flops_per_token(32) == 6 * n + 12 * 2 * 64 * 32
    assert mfu.mfu(1e4, 1e9, 100e12, devices=2) == pytest.approx(1e13 / 200e12)


# -- short runs ------------------------------------------------------------------------------------

def test_runs_shorter_than_the_warmup_warm_up_for_a_tenth_of_the_run():
    assert warmup_for(200, 5000) == (200, "")
    steps, note = warmup_for(200, 40)
    assert steps == 4 and "warmup scaled down to 4" in note
    schedule = CosineSchedule(1e-3, 1e-4, steps, 40)
    assert schedule(4) == pytest.approx(1e-3)  # at the peak after a tenth of the run
    assert schedule(39) < schedule(20) < schedule(4)
    assert warmup_for(200, 5)[0] == 0  # a 5-step run: straight to the peak, then the cosine


# -- batch size --------------------------------------------------------------------------------------

def test_auto_batch_takes_the_largest_divisor_that_fits_a_fake_memory_limit():
    assert micro_batch_candidates(12) == [12, 6, 4, 3, 2, 1]
    per_window, fixed, limit = 1_000, 500, 5_000  # 4 windows fit, 6 do not

    def run_trial(batch):
        need = fixed + per_window * batch
        if need > 8_000:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate ...")
        return need

    tried = []

    def fits(batch):
        tried.append(batch)
        return trial_fits(run_trial, batch, limit_bytes=limit)

    assert pick_micro_batch(64, fits) == (4, 16)  # tokens per step kept: 4 x 16 == 64
    assert tried == [64, 32, 16, 8, 4]  # largest first, stops at the first fit (64..8 raised or exceeded)
    assert pick_micro_batch(12, fits) == (4, 3)
    with pytest.raises(UserError, match="out of GPU memory even at training.batch_size 1"):
        pick_micro_batch(8, lambda b: False)


def test_oom_message_names_the_fix():
    line = oom_message(batch_size=16, seq_len=1024, preset="base", precision="fp16", auto=False)
    assert "16 x 1024" in line and "training.auto_batch_size=true" in line and "\n" not in line


# -- the padding mask ----------------------------------------------------------------------------------

def test_pad_equal_to_eos_keeps_real_eos_in_the_loss_without_document_attention(tmp_path, helpers):
    from trainer.data import PackedDataset, find_split

    eos = helpers.EOS
    windows = np.array([[5, 6, eos, 7, 8, eos, eos, eos], [4, eos, 4, eos, 4, eos, 4, eos]], dtype=np.int32)
    # Window 0: documents of 3 and 3 tokens (each ending in a real eos), then 2 positions of padding (= eos).
    helpers.write_packed(tmp_path, "train", windows, pad_id=eos, eos_id=eos, mode="document", segments=[[3, 3], [8]])
    ds = PackedDataset(find_split(tmp_path, "train", required=True))
    assert ds[0]["labels"].tolist() == [5, 6, eos, 7, 8, eos, -100, -100]
    assert ds[1]["labels"].tolist() == windows[1].tolist()  # full: every eos is real
    assert "doc_ids" not in ds[0]
    # Without the sidecar the only clue left is the token value: every eos would be masked.
    helpers.write_packed(tmp_path / "old", "train", windows, pad_id=eos, eos_id=eos, mode="document")
    old = PackedDataset(find_split(tmp_path / "old", "train", required=True))
    assert old[0]["labels"].tolist() == [5, 6, -100, 7, 8, -100, -100, -100]


def test_a_short_run_logs_its_scaled_warmup_the_kernel_and_mfu_unknown_on_cpu(lm_root):
    import json

    from trainer.config import load_config
    from trainer.train_lm import run_training

    config = load_config(lm_root / "config" / "training_config.json",
                         ["training.max_steps=5", "training.warmup_steps=10", "training.auto_batch_size=true"])
    logs = []
    summary = run_training(config, root=lm_root, output_dir=lm_root / "short", nproc=1, log=logs.append)
    assert summary["step"] == 5
    assert any("warmup scaled down to 0" in m for m in logs)
    assert any("auto_batch_size needs a CUDA GPU" in m for m in logs)
    assert any(m.startswith("mfu: peak unknown for cpu") for m in logs)
    records = [json.loads(line) for line in (lm_root / "short" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if "loss" in r]
    assert len(train) == 5 and all("mfu" in r and r["mfu"] is None for r in train)
    assert train[0]["lr"] == pytest.approx(3e-3)  # no warmup left: the first step at the peak


def test_torchrun_with_one_process_trains_through_the_process_group_and_ddp(lm_root, tmp_path):
    # The GPU check runs `torchrun --nproc_per_node 1` to exercise NCCL; here the same path on gloo.
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "trainer.train_lm",
            "--config", str(lm_root / "config" / "training_config.json"), "--preset", "tiny", "--device", "cpu",
            "--output-dir", str(tmp_path / "out"), "--set", "training.max_steps=3", "--set", "training.eval_interval=3"]
    result = subprocess.run(argv, cwd=repo, env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=repo),
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DDP over 1 process(es), gloo backend" in result.stdout
    assert "max_steps: step 3" in result.stdout


def test_out_of_memory_in_a_step_stops_with_one_line_naming_the_fix(lm_root, monkeypatch):
    from trainer.config import load_config
    from trainer.model import GPT
    from trainer.train_lm import run_training

    def out_of_memory(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(GPT, "forward", out_of_memory)
    config = load_config(lm_root / "config" / "training_config.json", ["training.max_steps=2"])
    with pytest.raises(UserError, match=r"out of GPU memory training micro-batches of 8 x 32 tokens .*"
                                        r"training.auto_batch_size=true") as info:
        run_training(config, root=lm_root, output_dir=lm_root / "oom", nproc=1, log=lambda m: None)
    assert "\n" not in str(info.value)


def test_a_compile_failure_at_the_first_step_falls_back_to_eager(lm_root, monkeypatch):
    from torch._dynamo.exc import TorchDynamoException

    from trainer.config import load_config
    from trainer.train_lm import run_training

    class FailsToCompile(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.inner = model

        def forward(self, *args, **kwargs):
            raise TorchDynamoException("inductor: no working C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda model, **kw: FailsToCompile(model))
    config = load_config(lm_root / "config" / "training_config.json", ["training.max_steps=3", "training.compile=true"])
    logs = []
    summary = run_training(config, root=lm_root, output_dir=lm_root / "compile", nproc=1, log=logs.append)
    assert summary["step"] == 3 and summary["train_loss"] is not None
    assert sum("torch.compile failed (TorchDynamoException: inductor: no working C++ compiler); training eagerly" in m
               for m in logs) == 1

