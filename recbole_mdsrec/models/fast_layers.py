"""Faster equivalents of two layers that dominate a CPU training step, swapped into built models.

Dropout: 
On this stack ``nn.Dropout`` spends most of a CPU training step in ``bernoulli_``, which draws
one random number per element (264 ms for a [2048, 20, 256] tensor on 2 cores, against 19 ms
for multiplying it by a scalar). :class:`FastDropout` draws 64-bit random words and uses seven
bytes of each as independent uniform draws over 0..255, so an element is kept when its byte is
at least ``256·p``: the same distribution as Bernoulli(1 − p) whenever ``256·p`` is a whole
number (p = 0.5, 0.25, 0.1875, ...). For any other p it falls back to ``nn.Dropout``, so it is
never an approximation. On a GPU, where torch's fused dropout is fast, it also falls back.
The draws come from torch's default generator: seeding and saved RNG states work as before.

GELU and swish: RecBole's Transformer feed-forward layer writes them as Python expressions
(``x * 0.5 * (1 + erf(x / sqrt 2))``), six elementwise passes forward and more backward over
the widest tensor of the model; ``F.gelu`` and ``F.silu`` are the same functions in one kernel.

``use_fast_layers(model)`` makes both swaps in a built model (RecBole's models included); the
runner does it for every model alike (option ``fast_layers``), so comparisons stay fair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from recbole.model.layers import FeedForward
from torch import nn

_BYTES_PER_WORD = 7  # torch's int64 random_() draws from [0, 2^63): the top byte is not uniform


def random_bytes(n: int) -> torch.Tensor:
    """``n`` independent uniform draws over 0..255 (uint8), from torch's default CPU generator."""
    words = torch.empty((n + _BYTES_PER_WORD - 1) // _BYTES_PER_WORD, dtype=torch.int64).random_()
    return words.view(torch.uint8).view(-1, 8)[:, :_BYTES_PER_WORD].reshape(-1)[:n]


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with byte-threshold masks on the CPU (see the module docstring)."""

    def _threshold(self, x: torch.Tensor) -> int | None:
        threshold = self.p * 256
        exact = threshold == int(threshold) and 0 < threshold < 256
        if exact and x.device.type == "cpu" and x.is_floating_point() and not self.inplace:
            return int(threshold)
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        threshold = self._threshold(x)
        if threshold is None:
            return super().forward(x)
        mask = (random_bytes(x.numel()).view(x.shape) >= threshold).to(x.dtype)
        return x * mask.mul_(1.0 / (1.0 - self.p))


_FUSED_ACTIVATIONS = {FeedForward.gelu: F.gelu, FeedForward.swish: F.silu}


def use_fast_layers(model: nn.Module) -> int:
    """Replace every ``nn.Dropout`` inside ``model`` by a :class:`FastDropout` with the same
    probability, and RecBole's Python GELU/swish by torch's kernels; returns the swap count."""
    swapped = 0
    for module in model.modules():
        for name, child in module.named_children():
            if type(child) is nn.Dropout:
                setattr(module, name, FastDropout(child.p, child.inplace))
                swapped += 1
        if isinstance(module, FeedForward):
            fused = _FUSED_ACTIVATIONS.get(getattr(module.intermediate_act_fn, "__func__", None))
            if fused is not None:
                module.intermediate_act_fn = fused
                swapped += 1
    return swapped
