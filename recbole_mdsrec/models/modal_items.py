"""The frozen modal item table every feature-aware model reads: features, masks, projections.

``ModalItemTable`` holds each modality's features ``F^m`` [n_items, d_m] and mask [n_items]
(False where the item lacks the modality) as frozen, non-persistent buffers: they come from
the dataset, never from checkpoints, and no gradient reaches them. Each modality has its
learned :class:`FeatureProjection` into the model's space; an item lacking the modality
gets a learned "missing" vector there (or zeros), never a projection of a zero row posing
as a feature.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.models.options import choice

PROJECTIONS = ("linear", "mlp")
MISSING = ("learned", "zero")


def projection_net(kind: str, in_dim: int, out_dim: int, dropout: float = 0.0) -> nn.Module:
    """``linear``: one Linear; ``mlp``: Linear-GELU-Dropout-Linear."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(out_dim, out_dim))


def modalities_of(dataset, model_name: str) -> list[str]:
    """The modalities of ``dataset``, which must be a multimodal one."""
    if not hasattr(dataset, "modal_features"):
        raise ConfigError(
            f"{model_name} needs per-item modal features, but dataset '{dataset.dataset_name}' was loaded "
            "without them. Fix: use a multimodal dataset (e.g. --dataset=ml-100k-mm) prepared with "
            "`python -m recbole_mdsrec.cli.prepare`."
        )
    return list(dataset.modalities)


class FeatureProjection(nn.Module):
    """``net(F)`` where the item has the modality, the "missing" vector (or 0) elsewhere."""

    def __init__(self, net: nn.Module, out_dim: int, missing: str = "learned"):
        super().__init__()
        self.net = net
        self.missing = nn.Parameter(torch.zeros(out_dim)) if missing == "learned" else None

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """features [..., d_m], mask [...] -> [..., d]."""
        projected = self.net(features)
        fill = self.missing if self.missing is not None else projected.new_zeros(())
        return torch.where(mask.unsqueeze(-1), projected, fill)


class ModalItemTable(nn.Module):
    """Frozen features and masks of the modalities a model reads, and their projections."""

    def __init__(self, features: Mapping[str, torch.Tensor], masks: Mapping[str, torch.Tensor],
                 projections: Mapping[str, nn.Module]):
        super().__init__()
        self.modalities = list(features)
        for m in self.modalities:
            self.register_buffer(f"features_{m}", features[m], persistent=False)
            self.register_buffer(f"mask_{m}", masks[m], persistent=False)
        self.projections = nn.ModuleDict({m: projections[m] for m in self.modalities})

    @classmethod
    def from_config(cls, config, dataset, model_name: str, out_dim: int, dropout: float = 0.0,
                    modalities: list[str] | None = None, nets: Mapping[str, nn.Module] | None = None,
                    missing: str | None = None):
        """The table of ``modalities`` (default: every modality of ``dataset``), projected by
        the options ``feature_projection`` and ``missing_feature`` unless ``nets`` gives a
        modality's network and ``missing`` the treatment of items lacking it."""
        available = modalities_of(dataset, model_name)
        modalities = available if modalities is None else list(modalities)
        nets = dict(nets or {})
        kind = choice(config, "feature_projection", PROJECTIONS) if len(nets) < len(modalities) else None
        missing = missing or choice(config, "missing_feature", MISSING)
        features = {m: dataset.modal_features[m] for m in modalities}
        projections = {}
        for m in modalities:
            net = nets.get(m) or projection_net(kind, features[m].shape[1], out_dim, dropout)
            projections[m] = FeatureProjection(net, out_dim, missing)
        return cls(features, {m: dataset.modal_masks[m] for m in modalities}, projections)

    @property
    def n_modalities(self) -> int:
        return len(self.modalities)

    def features(self, modality: str) -> torch.Tensor:
        return getattr(self, f"features_{modality}")

    def mask(self, modality: str) -> torch.Tensor:
        return getattr(self, f"mask_{modality}")

    def vectors(self, modality: str) -> torch.Tensor:
        """Every item's projected vector of ``modality``: [n_items, d]."""
        return self.projections[modality](self.features(modality), self.mask(modality))

    def fields(self, items: torch.Tensor) -> torch.Tensor:
        """One field per modality for each item id: [*items.shape, M, d]."""
        # A batch of sequences repeats items many times: project each distinct item once.
        unique, inverse = torch.unique(items, return_inverse=True)
        fields = [self.projections[m](self.features(m)[unique], self.mask(m)[unique]) for m in self.modalities]
        return torch.stack(fields, dim=-2)[inverse]
