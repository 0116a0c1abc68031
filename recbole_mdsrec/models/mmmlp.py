r"""MMMLP: Multi-modal Multilayer Perceptron for Sequential Recommendations.

J. Liang et al., WWW 2023 (reference code: Applied-Machine-Learning-Lab/MMMLP, ``mmmlp.py``,
read in ``docs/mmmlp.md``). An MLP-Mixer per modality over the sequence, fused per position.

- Mixer block (pre-LayerNorm residuals): token mixing across the ``L`` positions,
  ``x + FF_L(LN(x))`` (an ``L → 4L → L`` MLP applied to each hidden channel), then channel
  mixing ``x + FF_H(LN(x))`` (``H → 4H → H``); GELU, dropout after each layer.
- ID branch: ``X = LN_a(E[s])``, one block applied ``n_layers`` times (shared weights).
  Each modality m: ``Y^m = LN_m(P_m(f^m)[s])``, its own block applied ``modal_layers`` times.
- Fusion per position: ``F = W [X ‖ Y^1 ‖ … ‖ Y^M] + b`` after a LayerNorm over the
  concatenation; the user is ``u = LN_a(F_{last})`` (the same LN_a as the input) and items
  are scored by ``⟨u, E_i⟩`` under softmax cross-entropy.

Differences from the reference code, and why:
- each modality's features pass a learned projection ``P_m`` to ``hidden_size``: the
  reference reads 128-d vectors of unknown origin directly, the bundled datasets' features
  have their own sizes; items lacking a modality get the learned "missing" vector;
- ``modal_layers`` applications of each modality's block feed each output to the next; the
  default 1 is what the reference computes (its loop of 4 recomputes one block on the same
  input), 4 its evident intent;
- ``n_layers``, which the reference repository does not set, is 2, the depth of the grid's
  other sequence encoders (MLP4Rec, which the reference copies, used 8; each application
  costs about one SASRec layer's elementwise work times four, ``benchmarks/README.md``);
- any number of modalities (the reference hard-codes text and image), any sequence length
  and hidden size (the reference hard-codes 50 and 128), frozen feature tables instead
  of a per-token Python lookup, and token mixing as a linear layer over the transposed
  tensor (the Conv1d's map and initialisation, about twice as fast here).
As in the reference, token mixing is not causal and padding is not masked: RecBole
right-pads, so the last valid position sees only the sequence's own items and padding
(whose inputs are fixed), and a shorter padded length would change the scores.
"""

from __future__ import annotations

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn

from recbole_mdsrec.models.init import init_weights, normal_init
from recbole_mdsrec.models.modal_items import ModalItemTable, modalities_of
from recbole_mdsrec.models.options import choice
from recbole_mdsrec.models.scoring import DotProductScoring, ItemEmbeddingScoring


class DefaultInitLinear(nn.Linear):
    """A linear layer that keeps torch's default initialisation after RecBole's rule has run,
    as the reference's token-mixing Conv1d does (RecBole's rule does not touch a Conv1d)."""

    def reset_own_parameters(self) -> None:
        self.reset_parameters()


def _mlp(layer: type, width: int, expansion: int, dropout: float) -> nn.Sequential:
    """``layer(width → expansion·width) → GELU → Dropout → layer(→ width) → Dropout``."""
    inner = expansion * width
    return nn.Sequential(layer(width, inner), nn.GELU(), nn.Dropout(dropout), layer(inner, width), nn.Dropout(dropout))


class MixerBlock(nn.Module):
    """Token mixing across positions, then channel mixing, each a pre-LN residual MLP. Its
    LayerNorms use torch's default epsilon, as the reference's.

    Token mixing is the reference's kernel-1 Conv1d whose channels are the positions, computed
    as a linear layer over the transposed [B, H, L] tensor: the same map, about twice as fast
    on the CPU (``benchmarks/token_mixing.py``, ``benchmarks/README.md``).
    """

    def __init__(self, length: int, hidden_size: int, expansion: int, dropout: float):
        super().__init__()
        self.token_norm = nn.LayerNorm(hidden_size)
        self.token_mlp = _mlp(DefaultInitLinear, length, expansion, dropout)
        self.channel_norm = nn.LayerNorm(hidden_size)
        self.channel_mlp = _mlp(nn.Linear, hidden_size, expansion, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, L, H] -> [B, L, H]."""
        x = x + self.token_mlp(self.token_norm(x).transpose(1, 2)).transpose(1, 2)  # mixes the L positions
        return x + self.channel_mlp(self.channel_norm(x))


class MixerBranch(nn.Module):
    """An input LayerNorm, then one :class:`MixerBlock` applied ``repeats`` times."""

    def __init__(self, length: int, hidden_size: int, expansion: int, dropout: float, repeats: int, eps: float):
        super().__init__()
        self.repeats = repeats
        self.norm = nn.LayerNorm(hidden_size, eps=eps)
        self.block = MixerBlock(length, hidden_size, expansion, dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.norm(tokens)
        for _ in range(self.repeats):
            x = self.block(x)
        return x


class MMMLP(ItemEmbeddingScoring, SequentialRecommender):
    dataset_class = "MultimodalSequentialDataset"

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.hidden_size = config["hidden_size"]
        self.initializer_range = config["initializer_range"]
        loss_type = choice(config, "loss_type", ("CE", "BPR"))
        expansion, dropout, eps = config["expansion_factor"], config["hidden_dropout_prob"], config["layer_norm_eps"]
        self.modalities = modalities_of(dataset, "MMMLP")

        # define layers and loss
        self.item_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.modal_items = ModalItemTable.from_config(config, dataset, "MMMLP", self.hidden_size)
        self.id_branch = MixerBranch(self.max_seq_length, self.hidden_size, expansion, dropout, config["n_layers"], eps)
        self.modal_branches = nn.ModuleDict({
            m: MixerBranch(self.max_seq_length, self.hidden_size, expansion, dropout, config["modal_layers"], eps)
            for m in self.modalities})
        width = (1 + len(self.modalities)) * self.hidden_size
        self.fusion_norm = nn.LayerNorm(width, eps=eps)
        self.fusion = nn.Linear(width, self.hidden_size)
        self.scoring = DotProductScoring(loss_type)

        # parameters initialization
        init_weights(self, normal_init(self.initializer_range))

    def forward(self, item_seq, item_seq_len):
        """The user vector [B, H] from the right-padded sequence [B, L]."""
        batch, length = item_seq.shape
        # RecBole pads to MAX_ITEM_LIST_LENGTH; token mixing is defined over that length
        if length < self.max_seq_length:
            item_seq = torch.nn.functional.pad(item_seq, (0, self.max_seq_length - length))
        branches = [self.id_branch(self.item_embedding(item_seq))]
        for m in self.modalities:
            branches.append(self.modal_branches[m](self.modal_items.vectors(m)[item_seq]))
        fused = self.fusion(self.fusion_norm(torch.cat(branches, dim=-1)))  # [B, L, H]
        last = fused[torch.arange(batch, device=item_seq.device), item_seq_len - 1]
        return self.id_branch.norm(last)  # LN_a again, as the reference
