"""The numeric precision of training and scoring (option ``precision``), for every model alike.

``fp32`` runs as RecBole does. ``bf16`` runs the forward passes (training and full-sort
scoring) under ``torch.autocast`` with bfloat16, on CPUs with AVX512-BF16 or AMX and on
GPUs that have it: the weights, the optimizer state and the loss stay float32, and autocast
keeps the reductions (softmax, cross-entropy, LayerNorm) in float32. ``fp16`` is for GPUs,
with a gradient scaler. Where the hardware lacks the asked precision the run says so and
uses fp32. Sparse graph products have no low-precision kernel and run in float32
(``graphs/propagate.py``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from recbole_mdsrec.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: the instructions that make bfloat16 GEMMs fast on a CPU."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


@dataclass(frozen=True)
class Precision:
    asked: str
    used: str
    device_type: str

    @classmethod
    def resolve(cls, asked: str, device: torch.device) -> "Precision":
        if asked not in PRECISIONS:
            raise ConfigError(f"Option 'precision' is {asked!r}; allowed values: {', '.join(PRECISIONS)}. "
                              "Fix: set --precision=fp32, bf16 or fp16 (fp16 on GPUs only).")
        kind = torch.device(device).type
        supported = {"fp32": True,
                     "bf16": cpu_has_bf16() if kind == "cpu" else kind == "cuda" and torch.cuda.is_bf16_supported(),
                     "fp16": kind == "cuda"}[asked]
        return cls(asked, asked if supported else "fp32", kind)

    @property
    def fallback_message(self) -> str | None:
        if self.asked == self.used:
            return None
        why = "this CPU has neither AVX512-BF16 nor AMX" if self.device_type == "cpu" else f"this {self.device_type} device lacks it"
        return f"precision {self.asked} was asked, but {why}: running fp32."

    @property
    def scaler(self) -> bool:
        """fp16 gradients underflow without a loss scale; bfloat16 has fp32's range."""
        return self.used == "fp16"

    def autocast(self):
        if self.used == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=DTYPES[self.used])
