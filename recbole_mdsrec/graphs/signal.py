"""How much next-item signal MDSRec's item graphs carry, before any training
(``python -m recbole_mdsrec.cli.graph_signal``).

RGC smooths each item's vector with its graph neighbours', so a graph helps ranking where
the item a user takes next is often a neighbour of the items just taken. For each
modality and each ``graph_mode`` (``behavior_weighted`` at every ``--betas`` value), the
graphs are built exactly as MDSRec builds them (training split only, the run's other
options, the same cache), and the report gives, over users: how often the *validation*
item is a neighbour of the user's last training item, against the share of items a
neighbour list covers (what random neighbours would reach), and how much the modalities'
neighbour lists overlap (the "difference in item relationships" the method rests on).
Test items are never read: the report can choose options without touching the test.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recbole_mdsrec.graphs.modal import modal_graph, training_cooccurrence
from recbole_mdsrec.graphs.spec import MODES, GraphSpec
from recbole_mdsrec.text_tables import render_table


@dataclass(frozen=True)
class GraphSignal:
    modality: str
    graph: str                 # "behavior_knn", "behavior_weighted (beta=0.5)", ...
    neighbours: float          # mean neighbours per item, self excluded
    hit_rate: float            # share of users whose validation item neighbours their last training item
    random_rate: float         # the same for neighbour lists drawn at random: neighbours / (items - 1)

    @property
    def lift(self) -> float:
        return self.hit_rate / self.random_rate if self.random_rate else float("nan")


def neighbour_lists(graph) -> sp.csr_matrix:
    """A modal graph (torch sparse CSR, as ``modal_graph`` gives it) as a boolean CSR without self loops."""
    n = graph.shape[0]
    lists = sp.csr_matrix((np.ones(graph.values().shape[0], dtype=bool), graph.col_indices().numpy(),
                           graph.crow_indices().numpy()), shape=(n, n))
    lists.setdiag(False)
    lists.eliminate_zeros()
    return lists


def hit_rate(neighbours: sp.csr_matrix, last_items: np.ndarray, next_items: np.ndarray) -> float:
    """Share of the pairs whose next item is among the last item's neighbours."""
    hits = np.asarray(neighbours[last_items, next_items]).ravel()
    return float(hits.mean()) if len(hits) else float("nan")


def overlap(a: sp.csr_matrix, b: sp.csr_matrix) -> float:
    """Mean over items with neighbours in both graphs of |N_a ∩ N_b| / min(|N_a|, |N_b|)."""
    shared = np.asarray(a.multiply(b).sum(1)).ravel()
    smaller = np.minimum(np.diff(a.indptr), np.diff(b.indptr))
    both = smaller > 0
    return float((shared[both] / smaller[both]).mean()) if both.any() else float("nan")


def validation_pairs(valid_dataset) -> tuple[np.ndarray, np.ndarray]:
    """Each user's last training item and validation item (internal ids), from the validation split."""
    history = valid_dataset.inter_feat[valid_dataset.item_id_list_field].numpy()
    lengths = valid_dataset.inter_feat[valid_dataset.item_list_length_field].numpy()
    targets = valid_dataset.inter_feat[valid_dataset.iid_field].numpy()
    return np.array(history[np.arange(len(history)), lengths - 1]), np.array(targets)


def graph_variants(spec: GraphSpec, betas: list[float]) -> list[tuple[str, GraphSpec]]:
    """``spec`` under every ``graph_mode``, ``behavior_weighted`` once per beta."""
    variants = [(mode, dataclasses.replace(spec, mode=mode)) for mode in MODES if mode != "behavior_weighted"]
    variants += [(f"behavior_weighted (beta={beta:g})", dataclasses.replace(spec, mode="behavior_weighted", beta=beta))
                 for beta in betas]
    return variants


@dataclass
class Measurement:
    signals: list[GraphSignal]
    overlaps: dict[str, float]   # graph variant -> neighbour overlap between modalities (mean over pairs)
    cooccurring: float           # items an item co-occurs with in the training part, mean over items that have any


def measure(train, valid, spec: GraphSpec, betas: list[float]) -> Measurement:
    """Signals of every modality × graph variant of a ``MultimodalSequentialDataset``'s
    training and validation splits (test rows are never looked at), and the modalities'
    neighbour overlap per variant (when there are two or more modalities). The graphs are
    MDSRec's: the same options (``spec``), the same cache."""
    last, target = validation_pairs(valid)
    counts = training_cooccurrence(train, spec)
    per_item = np.diff(counts.indptr)
    signals, overlaps = [], {}
    for name, variant in graph_variants(spec, betas):
        lists = {m: neighbour_lists(modal_graph(train, m, variant)) for m in train.modalities}
        for m, neighbours in lists.items():
            mean_degree = neighbours.sum() / max(int((np.diff(neighbours.indptr) > 0).sum()), 1)
            signals.append(GraphSignal(m, name, float(mean_degree), hit_rate(neighbours, last, target),
                                       float(mean_degree) / (train.item_num - 2)))
        pairs = [(a, b) for i, a in enumerate(train.modalities) for b in train.modalities[i + 1:]]
        if pairs:
            overlaps[name] = float(np.mean([overlap(lists[a], lists[b]) for a, b in pairs]))
    return Measurement(signals, overlaps, float(per_item[per_item > 0].mean()))


def report(measurement: Measurement) -> str:
    lines = render_table(
        ["modality", "graph", "neighbours per item", "validation item a neighbour of the last item",
         "random neighbours", "lift"],
        [[s.modality, s.graph, f"{s.neighbours:.1f}", f"{s.hit_rate:.4f}", f"{s.random_rate:.4f}", f"{s.lift:.1f}×"]
         for s in measurement.signals])
    if measurement.overlaps:
        lines += "\n\n" + render_table(["graph", "neighbour overlap between modalities"],
                                       [[name, f"{value:.2f}"] for name, value in measurement.overlaps.items()])
    return lines
