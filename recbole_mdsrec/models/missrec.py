r"""MISSRec trained from scratch: interest-aware multimodal sequence representation.

J. Wang et al. "MISSRec: Pre-training and Transferring Multi-modal Interest-aware Sequence
Representation for Recommendation." ACM MM 2023 (reference code: gimpong/MM23-MISSRec,
read in ``docs/missrec.md``; no pre-training corpus exists offline, so this is the
reference's fine-tuning without a pre-trained checkpoint, ``finetune.py`` without ``-p``).

- Items: per modality ``t_i = W_m f^m_i + b_m`` (a linear adaptor of the frozen features);
  one token per item, ``x_p = Σ_m t^m_{s_p} + P_p (+ E_{s_p} when transductive)``, then
  LayerNorm and dropout.
- Interests: before every training epoch every item's adapted vector of every modality is
  clustered by k-means into ``ceil(interest_ratio · T)`` clusters (``T`` vectors); a
  sequence's interest tokens are the set of its items' clusters, their centroids.
- A one-layer Transformer encoder reads the interest set, a one-layer decoder reads the
  item tokens (self-attention over the valid positions, cross-attention to the interests);
  the user is the L2-normalised decoder output at the last valid position ``h``.
- Scores: per modality the cosine ``a^m_i = ⟨h, t̂^m_i⟩``, fused per (user, item) by
  ``softmax_m(f · a^m_i)`` with one learned scalar ``f`` (init 0); transductive adds the ID
  cosine, ``(⟨h, Ê_i⟩ + 2 a_i) / 3``; logits ``/ temperature``; cross-entropy over all
  items plus ``gamma`` times the interest-norm regulariser ``R``.

Differences from the reference code, each its evident intent:
- k-means runs ``interest_iterations`` Lloyd iterations (``graphs/kmeans.py``, seeded by
  the run's seed and the epoch, so a resumed run re-clusters alike); the reference's
  bundled k-means stops after one pass and averages ``|z|`` instead of ``z``;
- items lacking a modality give no vector of it to the clustering and no interest token
  (the reference clusters their adapter bias like a feature); their token and candidate
  vector use a learned "missing" vector (``missing_feature``);
- ``R = mean_b ||mean_{valid j} o_bj||² / d`` over the valid interest outputs; the
  reference sums over the batch and includes the padded interest slots;
- the interest set of a sequence is found by sorting its cluster ids (duplicates masked),
  not by a Python loop per sequence: the same set.
Like the reference, the adaptors keep torch's default Linear initialisation and the
decoder's self-attention is not causal (RecBole right-pads; the read-out position sees the
sequence's own items only). The encoder-decoder is ``nn.Transformer``'s, with its parameter
names, computed batch-first, the decoder's queries at the read-out position only (``encoder_decoder.py``:
the same outputs; its cost against ``nn.Transformer`` in ``benchmarks/README.md``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn

from recbole_mdsrec.graphs.kmeans import kmeans, nearest_centroids
from recbole_mdsrec.models.encoder_decoder import ACTIVATIONS, EncoderDecoder
from recbole_mdsrec.models.eval_cache import EvalCache
from recbole_mdsrec.models.init import init_weights, normal_init
from recbole_mdsrec.models.modal_items import ModalItemTable, modalities_of
from recbole_mdsrec.models.options import choice


class InterestClusters(nn.Module):
    """Item -> interest-cluster tables per modality and the centroids, refreshed by :meth:`fit`
    (no gradient). Persistent buffers: a checkpoint keeps the clustering its weights were
    evaluated with."""

    def __init__(self, n_items: int, n_modalities: int, hidden_size: int, ratio: float, iterations: int):
        super().__init__()
        self.ratio = ratio
        self.iterations = iterations
        self.register_buffer("lookup", torch.zeros(n_modalities, n_items, dtype=torch.long))  # 0 = none
        self.register_buffer("centroids", torch.zeros(1, hidden_size))  # row 0 = padding, grows in fit

    @torch.no_grad()
    def fit(self, vectors: torch.Tensor, masks: torch.Tensor, seed: int) -> None:
        """Cluster the items' vectors [M, n_items, d] where ``masks`` [M, n_items] holds (row 0 never)."""
        masks = masks.clone()
        masks[:, 0] = False
        points = vectors[masks].float()  # [T, d]
        n_clusters = max(1, math.ceil(self.ratio * points.shape[0]))
        centroids = kmeans(points, n_clusters, seed=seed, iterations=self.iterations)
        labels = nearest_centroids(points, centroids, 1, spherical=False)[:, 0] + 1
        lookup = torch.zeros_like(self.lookup)
        lookup[masks] = labels
        self.lookup = lookup
        self.centroids = torch.cat([centroids.new_zeros(1, centroids.shape[1]), centroids])

    def interest_set(self, item_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The interests of each sequence [B, L] as (cluster ids [B, M·L] sorted, validity
        [B, M·L]): repeated clusters and the padding id are invalid."""
        ids, _ = torch.sort(self.lookup[:, item_seq].permute(1, 0, 2).flatten(1), dim=1)  # [B, M·L]
        repeated = torch.zeros_like(ids, dtype=torch.bool)
        repeated[:, 1:] = ids[:, 1:] == ids[:, :-1]
        return ids, (ids != 0) & ~repeated


class MISSRec(EvalCache, SequentialRecommender):
    dataset_class = "MultimodalSequentialDataset"

    MODES = ("transductive", "inductive")

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.hidden_size = config["hidden_size"]
        self.initializer_range = config["initializer_range"]
        self.mode = choice(config, "missrec_mode", self.MODES)
        choice(config, "loss_type", ("CE",))
        self.temperature = config["temperature"]
        self.gamma = config["gamma"]
        self.seed = config["seed"]
        self.modalities = modalities_of(dataset, "MISSRec")

        # define layers and loss: frozen features and their adaptors, IDs, positions
        self.modal_items = ModalItemTable.from_config(config, dataset, "MISSRec", self.hidden_size)
        self.item_embedding = (
            nn.Embedding(self.n_items, self.hidden_size, padding_idx=0) if self.mode == "transductive" else None
        )
        self.position_embedding = nn.Embedding(self.max_seq_length, self.hidden_size)
        self.layer_norm = nn.LayerNorm(self.hidden_size, eps=config["layer_norm_eps"])
        self.dropout = nn.Dropout(config["hidden_dropout_prob"])
        self.transformer = EncoderDecoder(
            self.hidden_size, config["n_heads"], config["n_encoder_layers"], config["n_decoder_layers"],
            config["inner_size"], config["hidden_dropout_prob"], choice(config, "hidden_act", tuple(ACTIVATIONS)),
            config["layer_norm_eps"])  # nn.Transformer's function and parameter names, batch-first
        self.fusion_scale = nn.Parameter(torch.zeros(()))  # f: 0 starts as the mean of the modalities
        self.interests = InterestClusters(self.n_items, len(self.modalities), self.hidden_size,
                                          config["interest_ratio"], config["interest_iterations"])

        # parameters initialization: RecBole's rule, but the adaptors keep torch's default (as the reference)
        init_weights(self, normal_init(self.initializer_range))
        for m in self.modalities:
            for layer in self.modal_items.projections[m].net.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()
        self.before_train_epoch(0)

    # --- interests ---------------------------------------------------------------------

    def modal_vectors(self) -> torch.Tensor:
        """Every item's adapted vector of every modality: [M, n_items, d]; once per training
        step, once per evaluation."""
        return self.cached_in_eval(lambda: torch.stack([self.modal_items.vectors(m) for m in self.modalities]))

    def before_train_epoch(self, epoch: int) -> None:
        """Re-cluster the interests from the current adaptors (called by the trainer)."""
        was_training = self.training
        self.eval()  # the adaptors' vectors without dropout
        masks = torch.stack([self.modal_items.mask(m) for m in self.modalities])
        with torch.no_grad():
            self.interests.fit(self.modal_vectors(), masks, seed=self.seed * 1000 + epoch)
        self.train(was_training)

    # --- sequence ----------------------------------------------------------------------

    def item_tokens(self, modal: torch.Tensor) -> torch.Tensor:
        """The decoder's item table: Σ_m t^m (+ E): [n_items, d]."""
        tokens = modal.sum(0)
        return tokens if self.item_embedding is None else tokens + self.item_embedding.weight

    def forward(self, item_seq, item_seq_len, modal: torch.Tensor | None = None):
        """The L2-normalised user vector [B, d] and the pooled interest outputs [B, d]."""
        modal = self.modal_vectors() if modal is None else modal
        positions = torch.arange(item_seq.size(1), device=item_seq.device)
        items = self.dropout(self.layer_norm(self.item_tokens(modal)[item_seq] + self.position_embedding(positions)))
        interest_ids, interest_valid = self.interests.interest_set(item_seq)
        memory = self.transformer.encoder(self.interests.centroids[interest_ids], interest_valid)  # [B, M·L, d]
        user = self.transformer.decoder(items, item_seq != 0, memory, interest_valid, at=item_seq_len - 1)  # [B, d]
        valid = interest_valid.unsqueeze(-1).to(memory.dtype)
        pooled = (memory * valid).sum(1) / valid.sum(1).clamp(min=1)  # mean of the valid interest outputs
        return F.normalize(user, dim=-1), pooled

    def _logits(self, user: torch.Tensor, modal: torch.Tensor, items: torch.Tensor | None = None) -> torch.Tensor:
        """Scores [B, n] of the users [B, d] for every item, or for ``items`` [B] (then [B])."""
        candidates = F.normalize(modal if items is None else modal[:, items], dim=-1)  # [M, n, d] or [M, B, d]
        if items is None:
            cosines = torch.einsum("bd,mnd->bnm", user, candidates)  # [B, n, M]
        else:
            cosines = torch.einsum("bd,mbd->bm", user, candidates)  # [B, M]
        fused = (torch.softmax(self.fusion_scale * cosines, dim=-1) * cosines).sum(-1)
        if self.item_embedding is not None:
            ids = F.normalize(self.item_embedding.weight if items is None else self.item_embedding(items), dim=-1)
            id_cosine = user @ ids.t() if items is None else (user * ids).sum(-1)
            fused = (id_cosine + 2 * fused) / 3
        return fused / self.temperature

    def calculate_loss(self, interaction):
        modal = self.modal_vectors()
        user, pooled = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], modal)
        loss = F.cross_entropy(self._logits(user, modal), interaction[self.POS_ITEM_ID])
        interest_norm = pooled.pow(2).sum(-1).mean() / self.hidden_size  # R
        return loss + self.gamma * interest_norm

    def predict(self, interaction):
        modal = self.modal_vectors()
        user, _ = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], modal)
        return self._logits(user, modal, interaction[self.ITEM_ID])

    def full_sort_predict(self, interaction):
        modal = self.modal_vectors()
        user, _ = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], modal)
        return self._logits(user, modal)
