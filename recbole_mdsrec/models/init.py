"""Parameter initialisation: RecBole's per-module rule, and the parameters a layer owns.

A model calls :func:`init_weights` once, at the end of ``__init__``, as RecBole's models call
``self.apply(...)``. Layers with parameters of their own beyond ``nn.Linear``/``nn.Embedding``
(interest prototypes, expert matrices) initialise them in ``reset_own_parameters``, which
:func:`init_weights` calls after the per-module rule, in module order.
"""

from __future__ import annotations

from typing import Callable

from torch import nn


def normal_init(std: float) -> Callable[[nn.Module], None]:
    """RecBole's SASRec-family initialisation, for ``module.apply``: Linear and Embedding
    weights ~ N(0, std), zero biases, LayerNorm at identity."""

    def init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    return init


def init_weights(model: nn.Module, per_module: Callable[[nn.Module], None]) -> None:
    """``per_module`` on every module (``model.apply``), then each layer's own parameters."""
    model.apply(per_module)
    for module in model.modules():
        reset = getattr(module, "reset_own_parameters", None)
        if reset is not None:
            reset()
