r"""UniSRec without pre-training: text-based item vectors through an MoE adaptor, SASRec.

Y. Hou et al. "Towards Universal Sequence Representation Learning for Recommender
Systems." KDD 2022 (reference code: RUCAIBox/UniSRec, ``unisrec.py``).

- Item text vectors ``x`` (modality ``unisrec_modality``) pass the MoE-enhanced adaptor:
  ``v = Σ_k g_k (x - b_k) W_k`` with ``g = softmax(x W_g + ε·softplus(x W_n))`` where the
  noise ``ε ~ N(0, 1)`` is drawn only in training (parametric whitening experts).
- ``unisrec_mode: transductive`` adds an ID embedding to ``v`` (the paper's transductive
  fine-tuning); ``inductive`` has no ID parameters, so items are known by their text only.
- A SASRec encoder reads the sequence of item vectors; the sequence vector and the item
  vectors are L2-normalised and matched by cosine / ``temperature`` under softmax CE.

Differences from the reference code (which fine-tunes a pre-trained model): there is no
pre-training stage; the adaptor maps each item once per step and sequences read that
table (the reference adapts every occurrence separately, so dropout and gate noise are
drawn per occurrence there); items lacking text get a learned vector instead of the
adapted zero vector; ``predict`` works (the reference has none in fine-tuning modes,
which crashes sampled evaluation).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn

from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.models.init import init_weights, normal_init
from recbole_mdsrec.models.modal_items import ModalItemTable, modalities_of
from recbole_mdsrec.models.options import choice
from recbole_mdsrec.models.scoring import DotProductScoring
from recbole_mdsrec.models.sequence import EncoderSpec, SequenceBranch


class MoEAdaptor(nn.Module):
    """Mixture of parametric-whitening experts ``(x - b_k) W_k`` with a softmax gate."""

    NOISE_EPSILON = 1e-2  # floor of the gate noise's standard deviation (reference value)

    def __init__(self, n_exps: int, in_dim: int, out_dim: int, dropout: float, noise: bool, init_std: float):
        super().__init__()
        self.noise = noise
        self.init_std = init_std
        self.dropout = nn.Dropout(dropout)
        self.biases = nn.Parameter(torch.zeros(n_exps, in_dim))
        self.experts = nn.Parameter(torch.empty(n_exps, in_dim, out_dim))
        # Zero gates start as a uniform mixture, as in the reference.
        self.w_gate = nn.Parameter(torch.zeros(in_dim, n_exps))
        self.w_noise = nn.Parameter(torch.zeros(in_dim, n_exps))

    def reset_own_parameters(self) -> None:
        nn.init.normal_(self.experts, std=self.init_std)

    def gates(self, x: torch.Tensor) -> torch.Tensor:
        logits = x @ self.w_gate
        if self.noise and self.training:
            std = F.softplus(x @ self.w_noise) + self.NOISE_EPSILON
            logits = logits + torch.randn_like(logits) * std
        return torch.softmax(logits, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [n, in_dim] -> [n, out_dim]."""
        gates = self.gates(x)  # the gate sees the features without dropout, as in the reference
        whitened = self.dropout(x).unsqueeze(1) - self.biases  # [n, K, in]
        experts = torch.einsum("nki,kio->nko", whitened, self.experts)
        return (gates.unsqueeze(-1) * experts).sum(dim=1)


class UniSRec(SequentialRecommender):
    dataset_class = "MultimodalSequentialDataset"

    MODES = ("transductive", "inductive")

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.hidden_size = config["hidden_size"]
        self.initializer_range = config["initializer_range"]
        self.mode = choice(config, "unisrec_mode", self.MODES)
        choice(config, "loss_type", ("CE",))
        encoder = EncoderSpec.from_config(config)
        modality = config["unisrec_modality"]
        modalities = modalities_of(dataset, "UniSRec")
        if modality not in modalities:
            raise ConfigError(
                f"UniSRec reads the '{modality}' features (option unisrec_modality), but the dataset was "
                f"loaded with modalities {modalities}. Fix: add it to --modalities or set "
                f"--unisrec_modality to one of {modalities}."
            )
        self.modality = modality

        # define layers and loss: the frozen text features and their MoE adaptor
        adaptor = MoEAdaptor(config["n_exps"], dataset.modal_features[modality].shape[1], self.hidden_size,
                             config["adaptor_dropout_prob"], config["adaptor_noise"], self.initializer_range)
        self.modal_items = ModalItemTable.from_config(config, dataset, "UniSRec", self.hidden_size,
                                                      modalities=[modality], nets={modality: adaptor}, missing="learned")
        # Inductive mode must not own ID parameters at all: items are known by text only.
        self.item_embedding = (
            nn.Embedding(self.n_items, self.hidden_size, padding_idx=0) if self.mode == "transductive" else None
        )
        self.encoder = SequenceBranch(encoder, self.max_seq_length)
        self.scoring = DotProductScoring("CE", temperature=config["temperature"])

        # parameters initialization
        init_weights(self, normal_init(self.initializer_range))

    def item_vectors(self) -> torch.Tensor:
        """Every item's vector [n_items, d], before normalisation."""
        items = self.modal_items.vectors(self.modality)  # the adapted text; the learned "missing" vector without
        if self.item_embedding is not None:
            items = items + self.item_embedding.weight
        return items

    def forward(self, item_seq, item_seq_len, items=None):
        """The L2-normalised sequence vector [B, d]; ``items`` = :meth:`item_vectors` if given."""
        items = self.item_vectors() if items is None else items
        output = self.encoder(items[item_seq], self.get_attention_mask(item_seq), item_seq != 0, item_seq_len - 1)
        return F.normalize(output, dim=-1)

    def _users_and_items(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        """The L2-normalised sequence vectors [B, d] and item vectors [n_items, d]: their dot
        products are cosines."""
        items = self.item_vectors()
        users = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items)
        return users, F.normalize(items, dim=-1)

    def calculate_loss(self, interaction):
        return self.scoring.loss(*self._users_and_items(interaction), interaction[self.POS_ITEM_ID])

    def predict(self, interaction):
        return self.scoring.pointwise(*self._users_and_items(interaction), interaction[self.ITEM_ID])

    def full_sort_predict(self, interaction):
        return self.scoring.full_sort(*self._users_and_items(interaction))
