"""The fast dropout and fused activations: the same distributions and functions as the layers
they replace, swapped into every model the runner builds."""

import pytest
import torch
from recbole.model.layers import FeedForward
from torch import nn

from recbole_mdsrec.config import Config
from recbole_mdsrec.models.fast_layers import FastDropout, random_bytes, use_fast_layers
from recbole_mdsrec.training.runner import build
from helpers import MM_SLICE


def test_random_bytes_are_uniform_over_all_256_values():
    torch.manual_seed(0)
    counts = torch.bincount(random_bytes(256 * 4000).long(), minlength=256).float()
    assert counts.numel() == 256
    # chi-square with 255 degrees of freedom: mean 255, sd ~22.6; 400 is beyond 6 sd
    chi2 = ((counts - 4000) ** 2 / 4000).sum().item()
    assert chi2 < 400


@pytest.mark.parametrize("p", [0.5, 0.25, 0.1875])
def test_fast_dropout_keeps_one_minus_p_and_preserves_the_mean(p):
    torch.manual_seed(1)
    layer = FastDropout(p).train()
    x = torch.ones(400_000)
    y = layer(x)
    kept = (y != 0).float().mean().item()
    assert abs(kept - (1 - p)) < 0.005
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
    assert abs(y.mean().item() - 1.0) < 0.01


def test_fast_dropout_gradient_is_the_mask_it_applied():
    torch.manual_seed(2)
    x = torch.randn(64, 20, 32, requires_grad=True)
    y = FastDropout(0.5).train()(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)


def test_fast_dropout_is_identity_in_eval_and_falls_back_when_p_is_not_a_multiple_of_1_256():
    x = torch.randn(1000)
    assert torch.equal(FastDropout(0.5).eval()(x), x)
    layer = FastDropout(0.2).train()
    assert layer._threshold(x) is None  # 0.2 * 256 = 51.2: torch's own dropout draws the mask
    torch.manual_seed(3)
    expected = nn.functional.dropout(x, 0.2, True)
    torch.manual_seed(3)
    assert torch.equal(layer(x), expected)


def test_fast_dropout_follows_the_seed():
    x = torch.randn(5000)
    torch.manual_seed(4)
    first = FastDropout(0.5).train()(x)
    torch.manual_seed(4)
    assert torch.equal(FastDropout(0.5).train()(x), first)


def test_fused_gelu_matches_recboles_python_gelu():
    torch.manual_seed(5)
    stock, fast = FeedForward(32, 64, 0.0, "gelu", 1e-12), FeedForward(32, 64, 0.0, "gelu", 1e-12)
    fast.load_state_dict(stock.state_dict())
    use_fast_layers(fast)
    assert fast.intermediate_act_fn is nn.functional.gelu
    x = torch.randn(8, 10, 32)
    assert torch.allclose(stock(x), fast(x), atol=1e-6)


@pytest.mark.shared_data
@pytest.mark.parametrize("model", ["SASRec", "MDSRec"])
def test_runner_swaps_every_dropout_unless_told_not_to(model, mm_config):
    for enabled in (True, False):
        _, _, built, _ = build(Config(model, MM_SLICE, config_dict={**mm_config, "fast_layers": enabled}))
        kinds = {type(m) for m in built.modules() if isinstance(m, nn.Dropout)}
        assert kinds == ({FastDropout} if enabled else {nn.Dropout})
