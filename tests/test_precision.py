"""Precision and compilation options: what runs where, fp32 untouched, bf16 close to it, and
the fallbacks that keep a run going."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import build_model
from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.models.compiled import compile_forward
from recbole_mdsrec.training import precision as precision_module
from recbole_mdsrec.training.precision import Precision


def test_precision_resolves_to_what_the_hardware_runs(monkeypatch):
    assert Precision.resolve("fp32", torch.device("cpu")).used == "fp32"
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: True)
    bf16 = Precision.resolve("bf16", torch.device("cpu"))
    assert bf16.used == "bf16" and bf16.fallback_message is None and not bf16.scaler
    monkeypatch.setattr(precision_module, "cpu_has_bf16", lambda: False)
    fallback = Precision.resolve("bf16", torch.device("cpu"))
    assert fallback.used == "fp32" and "neither AVX512-BF16 nor AMX" in fallback.fallback_message
    fp16 = Precision.resolve("fp16", torch.device("cpu"))  # GPUs only
    assert fp16.used == "fp32" and "running fp32" in fp16.fallback_message
    with pytest.raises(ConfigError, match="'precision' is 'fp8'"):
        Precision.resolve("fp8", torch.device("cpu"))


def test_autocast_computes_in_bfloat16_and_fp32_computes_as_before():
    x, w = torch.randn(4, 8), torch.randn(8, 3)
    with Precision("bf16", "bf16", "cpu").autocast():
        assert (x @ w).dtype == torch.bfloat16
    with Precision("fp32", "fp32", "cpu").autocast():
        assert torch.equal(x @ w, x @ w) and (x @ w).dtype == torch.float32


@pytest.mark.shared_data
@pytest.mark.skipif(not precision_module.cpu_has_bf16(), reason="this CPU has no bfloat16 support")
@pytest.mark.parametrize("model", ["MDSRec", "SASRec", "UniSRec"])
def test_bf16_trains_with_fp32_weights_and_scores_close_to_fp32(model, mm_config):
    """One bf16 training step keeps fp32 weights and gradients (the sparse graph product runs
    in fp32); full-sort scores of the same weights agree with fp32 to bf16's resolution, and
    the items a user already has stay masked out."""
    from recbole_mdsrec.registry import get_trainer

    config, (train, _, test), built = build_model(model, {**mm_config, "precision": "bf16"})
    trainer = get_trainer(config["MODEL_TYPE"], model)(config, built)
    assert trainer.precision.used == "bf16"
    batch = next(iter(train))
    with trainer.precision.autocast():
        loss = built.calculate_loss(batch)
    loss.float().backward()
    assert all(p.dtype == torch.float32 and (p.grad is None or p.grad.dtype == torch.float32)
               for p in built.parameters())
    approximate = trainer.evaluate(test, load_best_model=False)  # in bf16
    batched = next(iter(test))
    _, low, _, _ = trainer._full_sort_batch_eval(batched)
    trainer.precision = Precision("fp32", "fp32", "cpu")
    _, high, _, _ = trainer._full_sort_batch_eval(batched)
    exact = trainer.evaluate(test, load_best_model=False)
    assert low.dtype == torch.float32
    finite = torch.isfinite(high)
    assert torch.equal(finite, torch.isfinite(low))  # the same items masked (padding, history)
    scale = high[finite].abs().max()
    assert (low[finite] - high[finite]).abs().max() <= 0.02 * scale  # bf16 keeps 8 bits of mantissa
    assert set(approximate) == set(exact)
    for name, value in approximate.items():
        assert abs(value - exact[name]) <= 0.02, name


def test_a_forward_torch_cannot_compile_runs_eagerly_after_one_warning(monkeypatch):
    model = nn.Linear(3, 2)
    expected = model(torch.ones(1, 3))

    def failing_compile(fn, **kwargs):
        def compiled(*args, **kw):
            raise RuntimeError("no C++ compiler")
        return compiled

    monkeypatch.setattr(torch, "compile", failing_compile)
    compile_forward(model)
    with pytest.warns(UserWarning, match="running it eagerly"):
        first = model(torch.ones(1, 3))
    assert torch.equal(first, expected) and torch.equal(model(torch.ones(1, 3)), expected)


def test_a_compiled_forward_equals_the_eager_one():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4))
    x = torch.randn(5, 8)
    expected = model(x)
    compile_forward(model)
    torch.testing.assert_close(model(x), expected, atol=1e-5, rtol=1e-5)
