"""The sequence side shared by the plugin's models: a causal Transformer over item tokens
(SASRec's), and MDSRec's interest-centralized read-out of its outputs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from recbole.model.layers import TransformerEncoder
from torch import nn

from recbole_mdsrec.models.interest_centres import InterestCentreStream
from recbole_mdsrec.models.options import choice


@dataclass(frozen=True)
class EncoderSpec:
    """The Transformer's sizes and regularisation, read once from the config."""

    hidden_size: int
    inner_size: int
    n_layers: int
    n_heads: int
    hidden_dropout_prob: float
    attn_dropout_prob: float
    hidden_act: str
    layer_norm_eps: float

    @classmethod
    def from_config(cls, config) -> "EncoderSpec":
        return cls(config["hidden_size"], config["inner_size"], config["n_layers"], config["n_heads"],
                   config["hidden_dropout_prob"], config["attn_dropout_prob"], config["hidden_act"],
                   config["layer_norm_eps"])


@dataclass(frozen=True)
class ReadoutSpec:
    """How the ICA read-out finds a user's interest centre (``InterestCentralizedReadout``)."""

    center: str
    n_interests: int
    init_std: float
    temperature: float = 1.0

    CENTERS = ("mean", "last", "prototypes", "clusters")

    @classmethod
    def from_config(cls, config) -> "ReadoutSpec":
        center = choice(config, "ica_center", cls.CENTERS)
        return cls(center, config["n_interests"], config["initializer_range"], config["interest_temperature"])

    @property
    def clustered(self) -> bool:
        """Centres from k-means clusters of the features, in every layer (``interest_centres.py``)."""
        return self.center == "clusters"


class InterestCentralizedReadout(nn.Module):
    """ICA read-out: weight the sequence outputs by their closeness to an interest centre.

    ``u = sum_j softmax_j((W_q c)·(W_k o_j)/sqrt(d)) W_v o_j`` over valid positions, then
    ``u <- LN(u + o_n)`` with ``o_n`` the last valid output (the current intent).
    The centre ``c`` is the masked mean of the outputs, the last output, or attention over
    ``n_interests`` learned prototypes queried by the masked mean.
    """

    def __init__(self, hidden_size: int, spec: ReadoutSpec, layer_norm_eps: float):
        super().__init__()
        self.center = spec.center
        self.init_std = spec.init_std
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.prototypes = nn.Parameter(torch.empty(spec.n_interests, hidden_size)) if spec.center == "prototypes" else None
        self.scale = 1.0 / math.sqrt(hidden_size)

    def reset_own_parameters(self) -> None:
        if self.prototypes is not None:
            nn.init.normal_(self.prototypes, std=self.init_std)

    def interest_center(self, outputs, valid, last):
        """``c`` [B, d] from the outputs [B, L, d], their validity [B, L] and the last output [B, d]."""
        if self.center == "last":
            return last
        mean = (outputs * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        if self.center == "mean":
            return mean
        weights = torch.softmax(mean @ self.prototypes.t() * self.scale, dim=-1)  # [B, n_interests]
        return weights @ self.prototypes

    def attention(self, outputs: torch.Tensor, valid: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """``a`` [B, L]: each valid position's weight in the read-out (padding 0)."""
        center = self.interest_center(outputs, valid, last)
        logits = torch.einsum("bd,bnd->bn", self.query(center), self.key(outputs)) * self.scale
        return torch.softmax(logits.masked_fill(~valid, float("-inf")), dim=-1)

    def forward(self, outputs: torch.Tensor, valid: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        weights = self.attention(outputs, valid, last)  # [B, L]
        readout = torch.einsum("bn,bnd->bd", weights, self.value(outputs))
        return self.layer_norm(readout + last)


class SequenceBranch(nn.Module):
    """One user model over a sequence of item tokens: positions, a causal Transformer, and
    the ICA read-out (or, without one, the last position's output as SASRec uses it). With
    clustered centres (``ica_center: clusters``) the read-out is the centre stream's
    (``interest_centres.py``), given the centres at each call."""

    def __init__(self, spec: EncoderSpec, max_seq_length: int, readout: ReadoutSpec | None = None):
        super().__init__()
        self.position_embedding = nn.Embedding(max_seq_length, spec.hidden_size)
        self.layer_norm = nn.LayerNorm(spec.hidden_size, eps=spec.layer_norm_eps)
        self.dropout = nn.Dropout(spec.hidden_dropout_prob)
        self.encoder = TransformerEncoder(
            n_layers=spec.n_layers,
            n_heads=spec.n_heads,
            hidden_size=spec.hidden_size,
            inner_size=spec.inner_size,
            hidden_dropout_prob=spec.hidden_dropout_prob,
            attn_dropout_prob=spec.attn_dropout_prob,
            hidden_act=spec.hidden_act,
            layer_norm_eps=spec.layer_norm_eps,
        )
        self.readout = None
        self.centre_stream = None
        if readout is not None and readout.clustered:
            self.centre_stream = InterestCentreStream(spec, readout.temperature)
        elif readout is not None:
            self.readout = InterestCentralizedReadout(spec.hidden_size, readout, spec.layer_norm_eps)

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor, valid: torch.Tensor,
                last_index: torch.Tensor) -> torch.Tensor:
        """tokens [B, L, d], the causal mask, validity [B, L], last valid positions [B] -> user [B, d]."""
        return self.encode(tokens, attention_mask, valid, last_index)[1]

    def encode(self, tokens: torch.Tensor, attention_mask: torch.Tensor, valid: torch.Tensor,
               last_index: torch.Tensor, centres: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """As ``forward``, with the interest centres [C, d] when clustered (None: no centre
        stream) -> (the last valid output [B, d], the user vector [B, d])."""
        hidden = self._hidden(tokens)
        at_last = torch.arange(tokens.size(0), device=tokens.device), last_index
        if self.centre_stream is not None and centres is not None:
            outputs, centred = self.centre_stream(hidden, self.encoder.layer, attention_mask, valid, centres)
            return outputs[at_last], centred[at_last]
        outputs = self.encoder(hidden, attention_mask, output_all_encoded_layers=False)[-1]  # [B, L, d]
        last = outputs[at_last]
        if self.readout is None:
            return last, last
        return last, self.readout(outputs, valid, last)

    def _hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.size(1), device=tokens.device)
        return self.dropout(self.layer_norm(tokens + self.position_embedding(positions)))

    def history_attention(self, tokens: torch.Tensor, attention_mask: torch.Tensor, valid: torch.Tensor,
                          last_index: torch.Tensor, centres: torch.Tensor | None = None) -> torch.Tensor | None:
        """The read-out's weights over the positions [B, L]: the ICA read-out's, or with clustered
        centres the last position's centre term's (None: this branch has neither)."""
        if self.centre_stream is not None and centres is not None:
            return self.centre_stream.history_attention(self._hidden(tokens), self.encoder.layer, attention_mask, valid,
                                                        centres, last_index)
        if self.readout is None:
            return None
        outputs = self.encoder(self._hidden(tokens), attention_mask, output_all_encoded_layers=False)[-1]
        last = outputs[torch.arange(tokens.size(0), device=tokens.device), last_index]
        return self.readout.attention(outputs, valid, last)
