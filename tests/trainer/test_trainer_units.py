"""Small pure pieces: duration parsing and stop estimation, precision choice, the lr schedule."""
import math
import time

import pytest
import torch

from fastpack.errors import UserError
from trainer.config import RunConfig
from trainer.budget import FAKE_CLOCK_ENV, FAKE_EPOCH, Budget, clock_from_env, format_duration, parse_duration
from trainer.precision import choose_precision, gpu_supported, require_torch
from trainer.schedule import CosineSchedule

ARCHS = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_90a", "sm_100", "sm_120", "compute_120"]


@pytest.mark.parametrize("text, seconds", [
    ("11h30m", 41400), ("90m", 5400), ("45s", 45), ("1h", 3600), ("1.5h", 5400), ("3600", 3600),
    (3600, 3600), (2.5, 2.5), ("2h 5m 3s", 7503), (None, None),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "11x", "h30", "5m5m", "-3", "0", "30m10"])
def test_parse_duration_rejects(text):
    with pytest.raises(UserError, match="--time-budget"):
        parse_duration(text)


def test_format_duration():
    assert format_duration(41400) == "11h30m00s" and format_duration(61) == "1m01s"


def test_clock_from_env_is_the_wall_clock_unless_the_test_hook_is_set(monkeypatch):
    from trainer.distributed import RELAUNCHED_ENV

    monkeypatch.delenv(FAKE_CLOCK_ENV, raising=False)
    monkeypatch.delenv(RELAUNCHED_ENV, raising=False)
    assert clock_from_env() is time.time
    monkeypatch.setenv(FAKE_CLOCK_ENV, "0.5:3")
    clock = clock_from_env()
    assert [clock(), clock(), clock()] == [FAKE_EPOCH, FAKE_EPOCH + 0.5, FAKE_EPOCH + 1.0]
    monkeypatch.setenv(RELAUNCHED_ENV, "1")  # a torchrun rank: starts LAUNCH seconds later
    assert clock_from_env()() == FAKE_EPOCH + 3
    monkeypatch.setenv(FAKE_CLOCK_ENV, "0.5:x")
    with pytest.raises(UserError, match="FASTPACK_FAKE_CLOCK: expected TICK\\[:LAUNCH\\]"):
        clock_from_env()


def test_budget_stops_when_a_step_a_checkpoint_and_the_evals_owed_no_longer_fit():
    budget = Budget(time.time() + 100.0, total=100.0, micro_steps=2, checkpoint_guess=10.0)
    assert budget.margin == 2.0  # 2% of the budget (at least a second, at most a minute)
    assert Budget(None, total=10.0).margin == 1.0 and Budget(None, total=41400.0).margin == 60.0
    assert not budget.should_stop(val_batches=10, test_batches=10)
    budget.record_step(4.0)
    budget.record_step(6.0)  # the slowest recent step counts
    budget.record_checkpoint(8.0)
    # Before any eval: a forward batch ~ step / micro_steps / 3 = 1 s, plus a 2 s guess for plot and samples.
    assert budget.eval_estimate(9) == pytest.approx(11.0) and budget.eval_estimate(0) == 0.0
    budget.record_eval(3.0, 6, 1.0)  # 0.5 s a batch, 1 s of plot and samples
    assert budget.eval_estimate(8) == pytest.approx(5.0) and budget.eval_estimate(8, extras=False) == pytest.approx(4.0)
    # need = 1.5 * (6 step + 8 checkpoint + 5 val + 2 test) + 2 margin = 33.5 seconds
    budget.deadline = time.time() + 34.0
    assert not budget.should_stop(val_batches=8, test_batches=4)
    budget.deadline = time.time() + 33.0
    assert budget.should_stop(val_batches=8, test_batches=4)
    assert not budget.should_stop(val_batches=0, test_batches=0)  # 1.5 * 14 + 2 = 23
    assert not Budget(None).should_stop(val_batches=100, test_batches=100)


def test_precision_by_compute_capability():
    cpu = choose_precision("auto", device_type="cpu")
    assert (cpu.name, cpu.dtype, cpu.uses_scaler) == ("fp32", None, False)
    t4 = choose_precision("auto", device_type="cuda", capability=(7, 5), gpu_name="Tesla T4", arch_list=ARCHS)
    assert (t4.name, t4.dtype, t4.uses_scaler) == ("fp16", torch.float16, True)
    a100 = choose_precision("auto", device_type="cuda", capability=(8, 0), arch_list=ARCHS)
    assert (a100.name, a100.uses_scaler) == ("bf16", False)
    assert "emulated" in choose_precision("bf16", device_type="cuda", capability=(7, 5), arch_list=ARCHS).note
    assert choose_precision("fp32", device_type="cuda", capability=(9, 0), arch_list=ARCHS).name == "fp32"
    with pytest.raises(UserError, match=r"Tesla P100-PCIE-16GB \(compute capability 6.0\) is not supported.*GPU T4 x2"):
        choose_precision("auto", device_type="cuda", capability=(6, 0), gpu_name="Tesla P100-PCIE-16GB", arch_list=ARCHS)
    with pytest.raises(UserError, match="fp16 needs a CUDA GPU"):
        choose_precision("fp16", device_type="cpu")


def test_gpu_support_from_the_arch_list():
    assert gpu_supported((8, 9), ARCHS)  # sm_86 binaries run on 8.9
    assert gpu_supported((12, 1), ARCHS)  # PTX compute_120 can be JIT-compiled
    assert not gpu_supported((6, 0), ARCHS) and not gpu_supported((7, 0), ["sm_75"])
    assert gpu_supported((6, 0), [])  # unknown build: let it try


def test_a_torch_older_than_the_model_needs_is_refused_with_the_fix():
    with pytest.raises(UserError, match=r"needs torch >= 2\.4; this is torch 2\.3\.1\+cu121: pip install 'torch>=2\.4'"):
        require_torch("2.3.1+cu121")
    for fine in ("2.4.0", "2.11.0+cu130", "3.0.0a0", torch.__version__):
        require_torch(fine)


def test_cosine_schedule():
    s = CosineSchedule(lr=1.0, min_lr=0.1, warmup_steps=4, max_steps=14)
    lrs = [s(i) for i in range(16)]
    assert lrs[:4] == [0.2, 0.4, 0.6, 0.8]
    assert lrs[4] == 1.0 and math.isclose(lrs[9], 0.55) and lrs[14] == lrs[15] == 0.1
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:]))
    assert s.differences({**s.state_dict(), "max_steps": 10}) == ["max_steps 10 -> 14"]


def test_training_config_rejects_nonsense():
    with pytest.raises(UserError, match="training.batch_size must be >= 1"):
        RunConfig().replace("training", batch_size=0)
    with pytest.raises(UserError, match="min_lr"):
        RunConfig().replace("training", lr=1e-4, min_lr=1e-3)
    with pytest.raises(UserError, match="model.preset must be one of"):
        RunConfig.from_dict({"model": {"preset": "huge"}})
