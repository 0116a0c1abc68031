"""ICA with clustered interest centres (the authors' SGP4SR code, ``docs/sgp4sr.md`` §3).

A modality's centres ``Z⁰ = S H`` [C, d] are the mean item vectors of its k-means clusters
(``graphs/interests.py``). They run beside the sequence stream: in layer l each centre reads
the layer's input sequence by cross-attention over the valid positions,

    Q = LN(Z^l);   Z^{l+1} = FFN(Q + Attn(Q, X^l, X^l))

and each position j, softly assigned to the centres by ``p_j = softmax(⟨x⁰_j, Z⁰_c⟩)`` (Gumbel
noise in training, none at evaluation), gets its assigned centre added to its output:
``o_j = LN(x^L_j + Σ_c p_jc Z^L_c)``.

Differences from the reference code, each its evident intent: centres attend to every valid
position (the code's mask is a triangle over (centre, position) and ignores padding); the
assignment is deterministic at evaluation (the code draws noise then too); each centre block
has its own attention and feed-forward weights (the code reuses the sequence layer's
attention), and RecBole's post-LN feed-forward block stands for the code's residual Conv1d,
at the code's width (hidden → hidden: ``inner_size`` is the sequence layers' alone).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from recbole.model.layers import FeedForward
from torch import nn

from recbole_mdsrec.models.encoder_decoder import split_heads


class CrossAttention(nn.Module):
    """Multi-head attention of queries [B, C, d] over keys and values [B, L, d], padding masked."""

    def __init__(self, hidden_size: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.dropout = dropout
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return split_heads(x, self.n_heads)

    def weights(self, queries: torch.Tensor, sequence: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The attention of each query over the positions, averaged over the heads: [B, C, L]."""
        q, k = self._split(self.query(queries)), self._split(self.key(sequence))
        logits = q @ k.transpose(-1, -2) / q.size(-1) ** 0.5  # [B, heads, C, L]
        return torch.softmax(logits.masked_fill(~valid[:, None, None, :], float("-inf")), dim=-1).mean(1)

    def forward(self, queries: torch.Tensor, sequence: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = valid[:, None, None, :]  # [B, 1, 1, L]: every head and centre sees the valid positions
        context = F.scaled_dot_product_attention(
            self._split(self.query(queries)), self._split(self.key(sequence)), self._split(self.value(sequence)),
            attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)  # [B, heads, C, d/heads]
        return self.out(context.transpose(1, 2).reshape_as(queries))


class CentreLayer(nn.Module):
    """One layer of the centre stream: ``Z <- FFN(LN(Z) + Attn(LN(Z), X, X))``."""

    def __init__(self, hidden_size: int, inner_size: int, n_heads: int, hidden_dropout: float,
                 attn_dropout: float, hidden_act: str, layer_norm_eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.attention = CrossAttention(hidden_size, n_heads, attn_dropout)
        self.feed_forward = FeedForward(hidden_size, inner_size, hidden_dropout, hidden_act, layer_norm_eps)

    def forward(self, centres: torch.Tensor, sequence: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        queries = self.norm(centres)
        return self.feed_forward(queries + self.attention(queries, sequence, valid))


class InterestCentreStream(nn.Module):
    """The centre stream of one branch and its injection into the sequence outputs."""

    def __init__(self, spec, temperature: float):
        super().__init__()
        self.temperature = temperature
        self.layers = nn.ModuleList(
            CentreLayer(spec.hidden_size, spec.hidden_size, spec.n_heads, spec.hidden_dropout_prob,
                        spec.attn_dropout_prob, spec.hidden_act, spec.layer_norm_eps)
            for _ in range(spec.n_layers))
        self.norm = nn.LayerNorm(spec.hidden_size, eps=spec.layer_norm_eps)

    def assignment(self, hidden: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
        """``p`` [B, L, C]: each position's soft assignment to the centres [C, d]."""
        logits = hidden @ centres.t()
        if self.training:
            return F.gumbel_softmax(logits, tau=self.temperature)
        return torch.softmax(logits / self.temperature, dim=-1)

    def history_attention(self, hidden: torch.Tensor, sequence_layers: nn.ModuleList, attention_mask: torch.Tensor,
                          valid: torch.Tensor, centres: torch.Tensor, last_index: torch.Tensor) -> torch.Tensor:
        """How the last position's centre term weighs the history: ``Σ_c p_last,c · a_c`` with
        ``a_c`` centre c's attention over the positions in the last layer: [B, L], summing to 1."""
        assign = self.assignment(hidden, centres)[torch.arange(hidden.size(0), device=hidden.device), last_index]
        stream = centres.unsqueeze(0).expand(hidden.size(0), -1, -1)
        x = hidden
        for depth, (sequence_layer, centre_layer) in enumerate(zip(sequence_layers, self.layers)):
            if depth == len(self.layers) - 1:
                weights = centre_layer.attention.weights(centre_layer.norm(stream), x, valid)  # [B, C, L]
                return torch.einsum("bc,bcl->bl", assign, weights)
            stream = centre_layer(stream, x, valid)
            x = sequence_layer(x, attention_mask)
        raise ValueError("the centre stream has no layer")

    def forward(self, hidden: torch.Tensor, sequence_layers: nn.ModuleList, attention_mask: torch.Tensor,
                valid: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden [B, L, d] (the encoder's input), the sequence layers, their mask, validity
        [B, L] and the centres [C, d] -> (sequence outputs [B, L, d], centred outputs [B, L, d])."""
        assign = self.assignment(hidden, centres)
        stream = centres.unsqueeze(0).expand(hidden.size(0), -1, -1)  # [B, C, d]
        x = hidden
        for sequence_layer, centre_layer in zip(sequence_layers, self.layers):
            stream = centre_layer(stream, x, valid)
            x = sequence_layer(x, attention_mask)
        return x, self.norm(x + assign @ stream)

