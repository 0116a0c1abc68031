"""Item vectors computed once per evaluation instead of once per batch.

A model whose item vectors depend on its parameters alone (propagation over item graphs,
adaptors over frozen features) would recompute them for every evaluation batch. Mixed into
such a model, :class:`EvalCache` keeps the value computed in eval mode until the model
leaves it: ``train()`` (and ``eval()``, which calls it) drops it, since parameters may change.
"""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


class EvalCache:
    """Mixin for an ``nn.Module``: put it before the module's base class."""

    _eval_cached = None

    def cached_in_eval(self, compute: Callable[[], T]) -> T:
        """``compute()``; in eval mode, the value of its first call since the last mode change."""
        if self._eval_cached is not None:
            return self._eval_cached
        value = compute()
        if not self.training:
            self._eval_cached = value
        return value

    def train(self, mode: bool = True):
        self._eval_cached = None
        return super().train(mode)
