"""``compile: True``: the model's forward pass through ``torch.compile`` (training and scoring
both call it). Compiled code is cached by torch between runs (``TORCHINDUCTOR_CACHE_DIR``).
A forward that torch cannot compile (an unsupported operator, no C++ compiler) runs eagerly
from then on, after one warning, so a run never fails for compiling."""

from __future__ import annotations

import warnings

import torch
from torch import nn


def compile_forward(model: nn.Module) -> None:
    eager = model.forward
    compiled = torch.compile(eager)
    failed: list[str] = []

    def forward(*args, **kwargs):
        if failed:
            return eager(*args, **kwargs)
        try:
            return compiled(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - any compiler failure: run eagerly (a real error recurs there)
            failed.append(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
            warnings.warn(f"torch.compile could not compile {type(model).__name__}.forward ({failed[0][:200]}); "
                          "running it eagerly.", stacklevel=2)
            return eager(*args, **kwargs)

    model.forward = forward
