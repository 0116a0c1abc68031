"""Building blocks shared by the plugin's models."""

from __future__ import annotations

import math

import torch
from torch import nn

from recbole_mdsrec import compat  # noqa: F401  (before RecBole is used)
from recbole.model.layers import TransformerEncoder


class FeatureProjection(nn.Module):
    """Maps frozen modal features [n, d_m] into the model's space [n, d].

    Items that lack the modality get a learned "missing" vector (``missing='learned'``)
    or nothing (``'zero'``), never a projection of a zero row posing as a feature.
    """

    def __init__(self, in_dim: int, out_dim: int, kind: str = "linear", missing: str = "learned", dropout: float = 0.0):
        super().__init__()
        if kind == "linear":
            self.net = nn.Linear(in_dim, out_dim)
        else:
            self.net = nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(out_dim, out_dim))
        self.missing = nn.Parameter(torch.zeros(out_dim)) if missing == "learned" else None

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        projected = self.net(features)
        fill = self.missing if self.missing is not None else projected.new_zeros(())
        return torch.where(mask.unsqueeze(-1), projected, fill)


class InterestCentralizedReadout(nn.Module):
    """ICA read-out: weight the sequence outputs by their closeness to an interest centre.

    ``u = sum_j softmax_j((W_q c)·(W_k o_j)/sqrt(d)) W_v o_j`` over valid positions, then
    ``u <- LN(u + o_n)`` with ``o_n`` the last valid output (the current intent).
    The centre ``c`` is the masked mean of the outputs, the last output, or attention over
    ``n_interests`` learned prototypes queried by the masked mean.
    """

    CENTERS = ("mean", "last", "prototypes")

    def __init__(self, hidden_size: int, center: str, n_interests: int, layer_norm_eps: float):
        super().__init__()
        self.center = center
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.prototypes = nn.Parameter(torch.empty(n_interests, hidden_size)) if center == "prototypes" else None
        self.scale = 1.0 / math.sqrt(hidden_size)

    def interest_center(self, outputs, valid, last):
        if self.center == "last":
            return last
        mean = (outputs * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        if self.center == "mean":
            return mean
        weights = torch.softmax(mean @ self.prototypes.t() * self.scale, dim=-1)
        return weights @ self.prototypes

    def forward(self, outputs: torch.Tensor, valid: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        center = self.interest_center(outputs, valid, last)
        logits = torch.einsum("bd,bnd->bn", self.query(center), self.key(outputs)) * self.scale
        weights = torch.softmax(logits.masked_fill(~valid, float("-inf")), dim=-1)
        readout = torch.einsum("bn,bnd->bd", weights, self.value(outputs))
        return self.layer_norm(readout + last)


class SequenceBranch(nn.Module):
    """One modality's user model: positions, a causal Transformer, and the ICA read-out
    (or, without ICA, the last position's output as SASRec uses it)."""

    def __init__(self, config, max_seq_length: int, readout: bool):
        super().__init__()
        hidden = config["hidden_size"]
        self.position_embedding = nn.Embedding(max_seq_length, hidden)
        self.layer_norm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.encoder = TransformerEncoder(
            n_layers=config["n_layers"],
            n_heads=config["n_heads"],
            hidden_size=hidden,
            inner_size=config["inner_size"],
            hidden_dropout_prob=config["hidden_dropout_prob"],
            attn_dropout_prob=config["attn_dropout_prob"],
            hidden_act=config["hidden_act"],
            layer_norm_eps=config["layer_norm_eps"],
        )
        self.readout = (
            InterestCentralizedReadout(hidden, config["ica_center"], config["n_interests"], config["layer_norm_eps"])
            if readout else None
        )

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor, valid: torch.Tensor,
                last_index: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.size(1), device=tokens.device)
        hidden = self.dropout(self.layer_norm(tokens + self.position_embedding(positions)))
        outputs = self.encoder(hidden, attention_mask, output_all_encoded_layers=False)[-1]
        last = outputs[torch.arange(outputs.size(0), device=outputs.device), last_index]
        if self.readout is None:
            return last
        return self.readout(outputs, valid, last)


class Fusion(nn.Module):
    """Per-user weights over the modality embeddings (``gate``, ``mean``, ``weighted``), or a
    linear map of their concatenation (``concat``) whose output is split back per modality."""

    KINDS = ("gate", "mean", "weighted", "concat")

    def __init__(self, kind: str, n_modalities: int, hidden_size: int):
        super().__init__()
        self.kind = kind
        self.n = n_modalities
        width = n_modalities * hidden_size
        if kind == "gate":
            self.net = nn.Sequential(nn.Linear(width, hidden_size), nn.Tanh(), nn.Linear(hidden_size, n_modalities))
        elif kind == "weighted":
            self.logits = nn.Parameter(torch.zeros(n_modalities))
        elif kind == "concat":
            self.net = nn.Linear(width, width)

    def forward(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``users`` [B, M, d] -> (per-modality user vectors [B, M, d], weights [B, M])."""
        batch = users.size(0)
        if self.kind == "concat":
            mixed = self.net(users.reshape(batch, -1)).view_as(users)
            return mixed, users.new_ones(batch, self.n)
        if self.kind == "gate":
            weights = torch.softmax(self.net(users.reshape(batch, -1)), dim=-1)
        elif self.kind == "weighted":
            weights = torch.softmax(self.logits, dim=0).expand(batch, -1)
        else:
            weights = users.new_full((batch, self.n), 1.0 / self.n)
        return users, weights


# --- Pieces shared by the feature-aware baselines (GRU4RecF, SASRecF, FDSA, UniSRec) -------


def normal_init(std: float):
    """RecBole's SASRec-family initialisation, for ``module.apply``: Linear and Embedding
    weights ~ N(0, std), zero biases, LayerNorm at identity."""

    def init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            module.bias.data.zero_()
            module.weight.data.fill_(1.0)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()

    return init


class ModalFeatureFields(nn.Module):
    """Dense stand-in for RecBole's ``FeatureSeqEmbLayer``: one feature field per modality.

    ``forward(items)`` gives ``[*items.shape, M, d]``, field m being the item's modal
    features mapped by its own :class:`FeatureProjection`. Features and masks are frozen
    non-persistent buffers (they come from the dataset, not from checkpoints).
    """

    PROJECTIONS = ("linear", "mlp")
    MISSING = ("learned", "zero")

    def __init__(self, features: dict, masks: dict, out_dim: int, kind: str = "linear",
                 missing: str = "learned", dropout: float = 0.0):
        super().__init__()
        self.modalities = list(features)
        for m in self.modalities:
            self.register_buffer(f"features_{m}", features[m], persistent=False)
            self.register_buffer(f"mask_{m}", masks[m], persistent=False)
        self.projections = nn.ModuleDict({
            m: FeatureProjection(features[m].shape[1], out_dim, kind, missing, dropout) for m in self.modalities
        })

    @classmethod
    def from_config(cls, config, dataset, model_name: str, out_dim: int, dropout: float = 0.0):
        """Fields of every modality of ``dataset``, shaped by the options ``feature_projection``
        and ``missing_feature``."""
        from recbole_mdsrec.models.options import choice, modal_features_of

        modalities, features, masks = modal_features_of(dataset, model_name)
        kind = choice(config, "feature_projection", cls.PROJECTIONS)
        missing = choice(config, "missing_feature", cls.MISSING)
        return cls({m: features[m] for m in modalities}, masks, out_dim, kind, missing, dropout)

    @property
    def n_fields(self) -> int:
        return len(self.modalities)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        # A batch of sequences repeats items many times: project each distinct item once.
        unique, inverse = torch.unique(items, return_inverse=True)
        fields = [
            self.projections[m](getattr(self, f"features_{m}")[unique], getattr(self, f"mask_{m}")[unique])
            for m in self.modalities
        ]
        return torch.stack(fields, dim=-2)[inverse]


class ItemEmbeddingScoring:
    """Loss and scores of a RecBole sequential model that matches its sequence vector
    ``forward(item_seq, item_seq_len)`` [B, d] against its ID embeddings ``item_embedding``
    by dot product (SASRec, GRU4RecF, SASRecF, FDSA): softmax CE over all items, or BPR
    against the sampled negative. Put it before ``SequentialRecommender`` in the bases."""

    LOSS_TYPES = ("CE", "BPR")

    def init_loss(self, config) -> None:
        from recbole.model.loss import BPRLoss

        from recbole_mdsrec.models.options import choice

        self.loss_type = choice(config, "loss_type", self.LOSS_TYPES)
        self.loss_fct = BPRLoss() if self.loss_type == "BPR" else nn.CrossEntropyLoss()

    def _sequence_vector(self, interaction) -> torch.Tensor:
        return self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])

    def calculate_loss(self, interaction):
        seq_output = self._sequence_vector(interaction)
        pos_items = interaction[self.POS_ITEM_ID]
        if self.loss_type == "BPR":
            pos_score = (seq_output * self.item_embedding(pos_items)).sum(-1)
            neg_score = (seq_output * self.item_embedding(interaction[self.NEG_ITEM_ID])).sum(-1)
            return self.loss_fct(pos_score, neg_score)
        return self.loss_fct(seq_output @ self.item_embedding.weight.t(), pos_items)

    def predict(self, interaction):
        seq_output = self._sequence_vector(interaction)
        return (seq_output * self.item_embedding(interaction[self.ITEM_ID])).sum(-1)

    def full_sort_predict(self, interaction):
        return self._sequence_vector(interaction) @ self.item_embedding.weight.t()
