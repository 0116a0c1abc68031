"""``nn.Transformer``'s post-LN encoder-decoder, computed batch-first (MISSRec's).

The same function and the same parameters, under the same names, as
``nn.Transformer(batch_first=True, norm_first=False)``: a state dict of one loads into the
other, and in evaluation both give the same outputs (``tests/test_encoder_decoder.py``).
Why not ``nn.Transformer`` itself: on the CPU, in training, its ``nn.MultiheadAttention``
turns batch-first inputs sequence-first and packs q, k, v into one ``[3, L, B, d]`` tensor
that is copied forward and zero-filled backward; with MISSRec's 300-wide tokens over 40
interest slots that costs a good part of a step (``benchmarks/encoder_decoder.py``). Here q, k
and v are projected by slices of the stacked parameter and split into heads as views, and the
attention weights' dropout is an ``nn.Dropout``
module, so that the runner's fast dropout applies to it as to every other dropout. And where
only one position's output is read (MISSRec's user), the decoder's last layer computes only
that position's queries.

Masks are validity masks (True = a key that takes part), the complement of torch's
``key_padding_mask``. A query whose keys are all invalid gets NaN here as in torch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """[B, L, d] -> [B, H, L, d/H], a view."""
    batch, length, width = x.shape
    return x.view(batch, length, n_heads, width // n_heads).transpose(1, 2)


class PackedAttention(nn.Module):
    """Multi-head attention with ``nn.MultiheadAttention``'s parameters: ``in_proj_weight``
    [3d, d] (q, k, v stacked), ``in_proj_bias`` [3d], ``out_proj``."""

    def __init__(self, hidden_size: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * hidden_size))
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.reset_own_parameters()

    def reset_own_parameters(self) -> None:
        """As ``nn.MultiheadAttention``: Xavier-uniform over the stacked q, k, v, zero biases."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.in_proj_bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        """query [B, Lq, d] attends to memory [B, Lk, d] where key_valid [B, Lk] -> [B, Lq, d]."""
        # one projection per slice: a stacked one's backward concatenates [B·L, 3d] gradients
        weights, biases = self.in_proj_weight.chunk(3), self.in_proj_bias.chunk(3)
        q, k, v = (split_heads(F.linear(x, w, b), self.n_heads)
                   for x, w, b in zip((query, memory, memory), weights, biases))
        scores = (q * (1.0 / math.sqrt(q.size(-1)))) @ k.transpose(-1, -2)  # [B, H, Lq, Lk]
        scores = scores.masked_fill(~key_valid[:, None, None, :], float("-inf"))
        context = self.dropout(torch.softmax(scores, dim=-1)) @ v  # [B, H, Lq, d/H]
        return self.out_proj(context.transpose(1, 2).reshape(query.shape))


class FeedForwardBlock(nn.Module):
    """``linear2(dropout(act(linear1(x))))``, under ``nn.TransformerEncoderLayer``'s names."""

    def __init__(self, hidden_size: int, inner_size: int, dropout: float, activation: str):
        super().__init__()
        self.linear1 = nn.Linear(hidden_size, inner_size)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(inner_size, hidden_size)
        self.activation = ACTIVATIONS[activation]

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class EncoderLayer(FeedForwardBlock):
    """``x = LN(x + SelfAttn(x)); x = LN(x + FFN(x))`` (post-LN)."""

    def __init__(self, hidden_size: int, n_heads: int, inner_size: int, dropout: float, activation: str, eps: float):
        super().__init__(hidden_size, inner_size, dropout, activation)
        self.self_attn = PackedAttention(hidden_size, n_heads, dropout)
        self.norm1 = nn.LayerNorm(hidden_size, eps=eps)
        self.norm2 = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout1(self.self_attn(x, x, valid)))
        return self.norm2(x + self.dropout2(self.feed_forward(x)))


class DecoderLayer(FeedForwardBlock):
    """``x = LN(x + SelfAttn(x)); x = LN(x + CrossAttn(x, memory)); x = LN(x + FFN(x))``."""

    def __init__(self, hidden_size: int, n_heads: int, inner_size: int, dropout: float, activation: str, eps: float):
        super().__init__(hidden_size, inner_size, dropout, activation)
        self.self_attn = PackedAttention(hidden_size, n_heads, dropout)
        self.multihead_attn = PackedAttention(hidden_size, n_heads, dropout)
        self.norm1 = nn.LayerNorm(hidden_size, eps=eps)
        self.norm2 = nn.LayerNorm(hidden_size, eps=eps)
        self.norm3 = nn.LayerNorm(hidden_size, eps=eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor, memory: torch.Tensor, memory_valid: torch.Tensor,
                at: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, d] -> [B, L, d]; or, given positions ``at`` [B], only theirs: [B, 1, d] (the
        other positions still serve as keys and values)."""
        query = x if at is None else x[torch.arange(x.size(0), device=x.device), at].unsqueeze(1)
        x = self.norm1(query + self.dropout1(self.self_attn(query, x, valid)))
        x = self.norm2(x + self.dropout2(self.multihead_attn(x, memory, memory_valid)))
        return self.norm3(x + self.dropout3(self.feed_forward(x)))


class LayerStack(nn.Module):
    """Layers then a final LayerNorm, as ``nn.Transformer``'s ``encoder`` and ``decoder`` hold them."""

    def __init__(self, layers: list[nn.Module], hidden_size: int, eps: float):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = nn.LayerNorm(hidden_size, eps=eps)


class Encoder(LayerStack):
    """Encoder layers then a final LayerNorm (``nn.Transformer``'s ``encoder``)."""

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """x [B, L, d] with validity [B, L] -> [B, L, d]."""
        for layer in self.layers:
            x = layer(x, valid)
        return self.norm(x)


class Decoder(LayerStack):
    """Decoder layers then a final LayerNorm (``nn.Transformer``'s ``decoder``)."""

    def forward(self, x: torch.Tensor, valid: torch.Tensor, memory: torch.Tensor, memory_valid: torch.Tensor,
                at: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, d] -> [B, L, d]; given positions ``at`` [B], the output at those alone [B, d]:
        the last layer then computes only their queries."""
        for depth, layer in enumerate(self.layers):
            last = depth == len(self.layers) - 1
            x = layer(x, valid, memory, memory_valid, at if last else None)
        return self.norm(x) if at is None else self.norm(x[:, 0])


class EncoderDecoder(nn.Module):
    """``encoder(source)`` and ``decoder(target, memory)``, as ``nn.Transformer``'s."""

    def __init__(self, hidden_size: int, n_heads: int, n_encoder_layers: int, n_decoder_layers: int,
                 inner_size: int, dropout: float, activation: str, eps: float):
        super().__init__()
        sizes = hidden_size, n_heads, inner_size, dropout, activation, eps
        self.encoder = Encoder([EncoderLayer(*sizes) for _ in range(n_encoder_layers)], hidden_size, eps)
        self.decoder = Decoder([DecoderLayer(*sizes) for _ in range(n_decoder_layers)], hidden_size, eps)
