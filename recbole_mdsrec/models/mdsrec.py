r"""MDSRec: Multimodal Difference Learning for Sequential Recommendation.

C. Li, Z. Guo, G. Li, L. Zou, arXiv 2412.08103 (2024). The equations implemented here, and
which of them are the paper's and which this project's reading, are in docs/method.md.

- RGC: per modality m, item vectors ``X^m = E + W_m F^m`` propagated over the modal-aware
  item graph ``Â^m`` (built with the behaviour signal): ``H^m = mean_l (Â^m)^l X^m``.
- ICA: per modality, its own causal Transformer and interest-centralized read-out ``u^m``.
- Fusion: ``ŷ_i = Σ_m α_m ⟨u^m, H^m_i⟩``; each modality matches items in its own space.

The authors' reading (``--variant=authors``, docs/method.md's last section) sets switches of
the same layers as the authors' SGP4SR code builds them: intersect graphs over ID embeddings
(``H^m = Â^m E``), k-means interest centres in every layer (``models/interest_centres.py``),
an ID space over co-occurrence-smoothed IDs, and ``id_space`` fusion with fixed weights and
per-modality losses. ``models/sgp4sr.py`` is SGP4SR itself, on these layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn

from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.graphs.interests import interest_clusters
from recbole_mdsrec.graphs.modal import behavior_smoothing, modal_graph
from recbole_mdsrec.graphs.propagate import COMBINATIONS, propagate, sparse_product, transposed
from recbole_mdsrec.graphs.spec import GraphSpec
from recbole_mdsrec.models.eval_cache import EvalCache
from recbole_mdsrec.models.init import init_weights, normal_init
from recbole_mdsrec.models.modal_items import ModalItemTable, modalities_of
from recbole_mdsrec.models.options import choice
from recbole_mdsrec.models.scoring import LOSS_TYPES, DotProductScoring
from recbole_mdsrec.models.sequence import EncoderSpec, ReadoutSpec, SequenceBranch


class Fusion(nn.Module):
    """From per-space user vectors to the score's terms: query vectors [B, T, d] and their
    weights [B, T]; ``ŷ_i = Σ_t w_t ⟨q_t, K_t⟩`` with K_t the candidate table of term t.

    Score-level kinds (T = S spaces, ``K_t`` = the space's items): per-user weights over the
    spaces (``gate``, ``mean``, ``weighted``, ``fixed``), or a linear map of their
    concatenation (``concat``) split back per space. ``id_space`` (the authors' SGP4SR code):
    ``q_0 = LN(Σ_s w_s o_s)`` over the spaces' last outputs, scored against the ID embeddings
    (``K_0 = E``); with ``modal_terms`` each modality's user vector follows as its own term.
    """

    KINDS = ("gate", "mean", "weighted", "concat", "fixed", "id_space")

    def __init__(self, kind: str, n_modalities: int, hidden_size: int, weights: torch.Tensor | None = None,
                 modal_terms: tuple[int, ...] = (), layer_norm_eps: float = 1e-12):
        super().__init__()
        self.kind = kind
        self.n = n_modalities
        self.modal_terms = modal_terms
        width = n_modalities * hidden_size
        if kind == "gate":
            self.net = nn.Sequential(nn.Linear(width, hidden_size), nn.Tanh(), nn.Linear(hidden_size, n_modalities))
        elif kind == "weighted":
            self.logits = nn.Parameter(torch.zeros(n_modalities))
        elif kind == "concat":
            self.net = nn.Linear(width, width)
        elif kind in ("fixed", "id_space") and weights is not None:
            self.register_buffer("fixed", weights, persistent=False)
        elif kind == "id_space":
            self.learned = nn.Parameter(torch.ones(n_modalities))  # starts as a plain sum
        if kind == "id_space":
            self.norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def space_weights(self) -> torch.Tensor:
        """The per-space constants of ``fixed`` and ``id_space``: [S]."""
        return self.fixed if hasattr(self, "fixed") else self.learned

    def forward(self, users: torch.Tensor, last: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``users`` [B, S, d] (and the spaces' last outputs [B, S, d]) -> (query [B, T, d], weights [B, T])."""
        batch = users.size(0)
        if self.kind == "id_space":
            weights = self.space_weights()
            fused = self.norm((last * weights.view(1, -1, 1)).sum(1, keepdim=True))  # [B, 1, d]
            terms = torch.cat([fused, users[:, list(self.modal_terms)]], dim=1)
            return terms, torch.cat([weights.new_ones(1), weights[list(self.modal_terms)]]).expand(batch, -1)
        if self.kind == "concat":
            mixed = self.net(users.reshape(batch, -1)).view_as(users)
            return mixed, users.new_ones(batch, self.n)
        if self.kind == "gate":
            weights = torch.softmax(self.net(users.reshape(batch, -1)), dim=-1)
        elif self.kind == "weighted":
            weights = torch.softmax(self.logits, dim=0).expand(batch, -1)
        elif self.kind == "fixed":
            weights = self.fixed.expand(batch, -1)
        else:
            weights = users.new_full((batch, self.n), 1.0 / self.n)
        return users, weights


@dataclass(frozen=True)
class ItemSpaces:
    """Item vectors of each matching space: what a sequence reads (``tokens``) and what it is
    scored against (``candidates``), both [n_items, S, d]; they differ only in the ID space
    (``C̃E`` against ``E``)."""

    tokens: torch.Tensor
    candidates: torch.Tensor


ITEM_INPUTS = ("id_features", "id")
ID_SPACE = "id"


class MDSRec(EvalCache, SequentialRecommender):
    dataset_class = "MultimodalSequentialDataset"

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        name = type(self).__name__

        # load parameters info
        self.hidden_size = config["hidden_size"]
        self.initializer_range = config["initializer_range"]
        self.n_graph_layers = config["n_graph_layers"]
        self.graph_combination = choice(config, "graph_combination", COMBINATIONS)
        self.difference = config["difference"]
        self.item_input = choice(config, "item_input", ITEM_INPUTS)
        self.id_branch = config["id_branch"]
        self.aux_losses = config["aux_losses"]
        loss_type = choice(config, "loss_type", LOSS_TYPES)
        fusion = choice(config, "fusion", Fusion.KINDS)
        encoder = EncoderSpec.from_config(config)
        readout = ReadoutSpec.from_config(config) if config["ica_readout"] else None
        graph = GraphSpec.from_config(config)
        self.modalities = modalities_of(dataset, name)
        # matching spaces: one per modality (or one shared without difference), then the ID space
        self.spaces = (list(self.modalities) if self.difference else ["modal"]) + ([ID_SPACE] if self.id_branch else [])
        space_weights = _space_weights(config, fusion, self.spaces)
        _check_switches(config, fusion, loss_type, space_weights)

        # frozen inputs, built from the training split only: the modal graphs Â^m (RGC), the
        # co-occurrence smoothing C̃ (ID branch), the interest clusters S^m (clustered ICA)
        if self.n_graph_layers > 0:
            for m in self.modalities:
                self._register_sparse(f"graph_{m}", modal_graph(dataset, m, graph), graph.is_symmetric)
        if self.id_branch:
            self._register_sparse("id_smoothing", behavior_smoothing(dataset, graph), False)
        self.clustered = readout is not None and readout.clustered
        if self.clustered:
            for m in self.modalities:
                clusters = interest_clusters(dataset.modal_features[m], dataset.modal_masks[m], readout.n_interests)
                self._register_sparse(f"clusters_{m}", clusters, False)

        # define layers and loss
        self.item_embedding = nn.Embedding(self.n_items, self.hidden_size, padding_idx=0)
        self.modal_items = None
        if self.item_input == "id_features":
            self.modal_items = ModalItemTable.from_config(config, dataset, name, self.hidden_size,
                                                          config["hidden_dropout_prob"])
        n_modal_spaces = len(self.modalities) if self.difference else 1
        # Without difference learning the modal item vectors are concatenated and mapped to
        # one space, encoded by one shared branch (the SASRecF-style design).
        self.shared_items = None if self.difference else nn.Linear(len(self.modalities) * self.hidden_size, self.hidden_size)
        if config["shared_encoder"]:
            shared = SequenceBranch(encoder, self.max_seq_length, readout)
            self.branches = nn.ModuleList(shared for _ in self.spaces)
        else:
            # The ID space has no clusters: its branch reads out the last position.
            id_readout = None if self.clustered else readout
            self.branches = nn.ModuleList(
                SequenceBranch(encoder, self.max_seq_length, readout if s != ID_SPACE else id_readout)
                for s in self.spaces)
        modal_terms = tuple(range(n_modal_spaces)) if fusion == "id_space" and self.aux_losses else ()
        self.fusion = Fusion(fusion, len(self.spaces), self.hidden_size, space_weights, modal_terms, encoder.layer_norm_eps)
        self.scoring = DotProductScoring(loss_type)

        # parameters initialization
        init_weights(self, normal_init(self.initializer_range))

    def _register_sparse(self, name: str, matrix: torch.Tensor, symmetric: bool) -> None:
        """A frozen sparse matrix and, unless symmetric, its transpose (``<name>_t``) for the backward pass."""
        self.register_buffer(name, matrix, persistent=False)
        if not symmetric:
            self.register_buffer(f"{name}_t", transposed(matrix), persistent=False)

    def _sparse(self, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A frozen sparse matrix and its transpose (None: symmetric)."""
        return getattr(self, name), getattr(self, f"{name}_t", None)

    # --- RGC -----------------------------------------------------------------------------

    def modal_item_vectors(self) -> torch.Tensor:
        """``H^m`` for every modality, stacked: [n_items, M, d]."""
        spaces = []
        for m in self.modalities:
            x = self.item_embedding.weight  # X^m = E (item_input: id) ...
            if self.modal_items is not None:
                x = x + self.modal_items.vectors(m)  # ... or E + W_m F^m
            if self.n_graph_layers > 0:
                graph, transpose = self._sparse(f"graph_{m}")
                x = propagate(graph, x, self.n_graph_layers, transpose, self.graph_combination)
            spaces.append(x)
        return torch.stack(spaces, dim=1)

    def item_vectors(self) -> ItemSpaces:
        """Item vectors of each matching space (S = M, or 1 without difference, + the ID
        space). Computed once per training step, and once per evaluation."""
        return self.cached_in_eval(self._item_spaces)

    def _item_spaces(self) -> ItemSpaces:
        items = self.modal_item_vectors()
        if not self.difference:
            items = self.shared_items(items.flatten(1)).unsqueeze(1)
        spaces = ItemSpaces(items, items)
        if self.id_branch:
            ids = self.item_embedding.weight
            smoothed = sparse_product(*self._sparse("id_smoothing"), ids)  # C̃E
            spaces = ItemSpaces(torch.cat([items, smoothed.unsqueeze(1)], 1), torch.cat([items, ids.unsqueeze(1)], 1))
        return spaces

    def interest_centres(self, tokens: torch.Tensor) -> list[torch.Tensor | None]:
        """Per space, its clusters' mean item vectors ``Z⁰ = S^m H^m`` [C, d]; the shared space
        of ``difference: False`` has every modality's clusters; the ID space none (None)."""
        if not self.clustered:
            return [None] * len(self.spaces)

        def centres(modalities, space):
            return torch.cat([sparse_product(*self._sparse(f"clusters_{m}"), tokens[:, space]) for m in modalities])

        if not self.difference:
            return [centres(self.modalities, 0)] + [None] * (len(self.spaces) - 1)
        return [centres([s], i) if s != ID_SPACE else None for i, s in enumerate(self.spaces)]

    # --- ICA and fusion ------------------------------------------------------------------

    def forward(self, item_seq, item_seq_len, items: ItemSpaces | None = None):
        """The score's query vectors [B, T, d] and their weights [B, T] (``Fusion``)."""
        items = self.item_vectors() if items is None else items
        attention_mask = self.get_attention_mask(item_seq)
        valid = item_seq != 0
        last_index = item_seq_len - 1
        flat_seq = item_seq.flatten()
        # index_select per space: its backward (index_add) is ~1.6x cheaper than that of
        # items[item_seq] over all spaces at once (index_put with accumulation).
        encoded = [branch.encode(items.tokens[:, s].index_select(0, flat_seq).view(*item_seq.shape, -1),
                                 attention_mask, valid, last_index, centres)
                   for s, (branch, centres) in enumerate(zip(self.branches, self.interest_centres(items.tokens)))]
        last = torch.stack([e[0] for e in encoded], dim=1)
        users = torch.stack([e[1] for e in encoded], dim=1)
        return self.fusion(users, last)

    # --- explanations ---------------------------------------------------------------------

    def term_names(self) -> list[str]:
        """The names of the score's terms (``Fusion``), in order."""
        if self.fusion.kind == "id_space":
            return ["id (fused)", *(self.spaces[t] for t in self.fusion.modal_terms)]
        return list(self.spaces)

    def score_terms(self, interaction) -> torch.Tensor:
        """Each term's part of every item's score, ``w_t ⟨q_t, K_t,i⟩``: [B, T, n_items]; the
        terms sum to ``full_sort_predict`` (to float rounding)."""
        items = self.item_vectors()
        query, weights = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items)
        return torch.einsum("btd,ntd->btn", query * weights.unsqueeze(-1), self.term_candidates(items))

    def history_attention(self, interaction) -> dict[str, torch.Tensor]:
        """Per space with an ICA read-out or interest centres, its weights over the sequence's positions [B, L]."""
        item_seq, item_seq_len = interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN]
        tokens = self.item_vectors().tokens
        mask, valid = self.get_attention_mask(item_seq), item_seq != 0
        weights = {}
        for s, (space, branch, centres) in enumerate(zip(self.spaces, self.branches, self.interest_centres(tokens))):
            attention = branch.history_attention(tokens[:, s][item_seq], mask, valid, item_seq_len - 1, centres)
            if attention is not None:
                weights[space] = attention
        return weights

    def graph_neighbours(self, item: int, n: int = 5) -> dict[str, list[int]]:
        """Per modality, the ``n`` heaviest neighbours of ``item`` in its graph (itself left out)."""
        if self.n_graph_layers == 0:
            return {}
        neighbours = {}
        for m in self.modalities:
            row = getattr(self, f"graph_{m}")[item].to_dense()
            row[item] = 0
            top = torch.topk(row, min(n, int((row > 0).sum())))
            neighbours[m] = top.indices.tolist()
        return neighbours

    def term_candidates(self, items: ItemSpaces) -> torch.Tensor:
        """The candidate table of each score term: [n_items, T, d]."""
        if self.fusion.kind != "id_space":
            return items.candidates
        ids = self.item_embedding.weight.unsqueeze(1)
        return torch.cat([ids, items.candidates[:, list(self.fusion.modal_terms)]], dim=1)

    def _scoring_pair(self, interaction, items: ItemSpaces):
        """Users as one vector [B, T·d] whose dot product with an item's concatenated terms
        [T·d] is ``Σ_t w_t ⟨q_t, K_t⟩``: one matrix product scores all terms."""
        query, weights = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN], items)
        return (query * weights.unsqueeze(-1)).flatten(1), self.term_candidates(items).flatten(1), query, weights

    def calculate_loss(self, interaction):
        items = self.item_vectors()
        negatives = interaction[self.NEG_ITEM_ID] if self.scoring.loss_type == "BPR" else None
        users, candidates, query, weights = self._scoring_pair(interaction, items)
        positives = interaction[self.POS_ITEM_ID]
        if not self.aux_losses:
            return self.scoring.loss(users, candidates, positives, negatives)
        # Each term's own cross-entropy, weighted by its (fixed) weight; id_space's fused term
        # weighs 1 and stands for the whole score, score-level kinds add the whole score's.
        per_term = self.term_candidates(items)
        loss = sum(weights[0, t] * self.scoring.loss(query[:, t], per_term[:, t], positives)
                   for t in range(query.size(1)))
        if self.fusion.kind != "id_space":
            loss = loss + self.scoring.loss(users, candidates, positives)
        return loss

    def predict(self, interaction):
        users, candidates, _, _ = self._scoring_pair(interaction, self.item_vectors())
        return self.scoring.pointwise(users, candidates, interaction[self.ITEM_ID])

    def full_sort_predict(self, interaction):
        users, candidates, _, _ = self._scoring_pair(interaction, self.item_vectors())
        return self.scoring.full_sort(users, candidates)


def _space_weights(config, fusion: str, spaces: list[str]) -> torch.Tensor | None:
    """``fusion_weights`` as a tensor over ``spaces`` (weights of absent modalities are
    ignored, so one preset serves text-only data); None when not given."""
    given = config["fusion_weights"]
    if given is None:
        if fusion == "fixed":
            raise ConfigError("fusion: fixed needs fusion_weights, a weight per space, e.g. "
                              "{text: 0.9, image: 0.1, id: 0.6}. Fix: set --fusion_weights or pick another fusion.")
        return None
    missing = [s for s in spaces if s not in (given or {})]
    if not isinstance(given, dict) or missing:
        raise ConfigError(f"fusion_weights must give a weight to every space ({', '.join(spaces)}); "
                          f"got {given!r}, missing {', '.join(missing) or 'none'}. "
                          "Fix: e.g. --fusion_weights=\"{'text': 0.9, 'image': 0.1, 'id': 0.6}\".")
    return torch.tensor([float(given[s]) for s in spaces])


def _check_switches(config, fusion: str, loss_type: str, space_weights) -> None:
    """Combinations of switches that have no meaning, refused with the fix."""
    if config["id_branch"] and not config["difference"]:
        raise ConfigError("id_branch: True needs difference: True (separate spaces). "
                          "Fix: set --id_branch=False or --difference=True.")
    if config["fusion_weights"] is not None and fusion not in ("fixed", "id_space"):
        raise ConfigError(f"fusion_weights is only read by fusion: fixed or id_space, not {fusion}. "
                          "Fix: set --fusion_weights=None or --fusion=fixed.")
    if config["aux_losses"] and (space_weights is None or loss_type != "CE"):
        raise ConfigError("aux_losses: True needs fixed fusion_weights (they weigh each modality's loss) "
                          "and loss_type: CE. Fix: set --fusion_weights (with fusion: fixed or id_space) or --aux_losses=False.")
