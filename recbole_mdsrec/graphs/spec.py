"""The RGC graph options of a run, read and validated once (``GraphSpec.from_config``).

Field names are the keys the graph cache hashes (``graphs/modal.py``); each one maps to a
config option of ``properties/model/MDSRec.yaml``, whose name every error message uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from recbole_mdsrec.graphs._options import choice_option, float_option, integer_option
from recbole_mdsrec.graphs.behavior import WEIGHTINGS

MODES = ("behavior_knn", "modal_knn", "behavior_weighted", "intersect")
SEARCHES = ("auto", "exact", "approximate")
EDGE_WEIGHTS = ("binary", "similarity")
SYMMETRIC = ("max", "mean", "none")
NORMALIZATIONS = ("symmetric", "row_mean")

#: config option of each field
OPTIONS = {
    "mode": "graph_mode", "k": "knn_k", "beta": "behavior_beta", "window": "behavior_window",
    "self_loop": "graph_self_loop", "edge_weight": "graph_edge_weight", "symmetric": "graph_symmetric",
    "search": "graph_search", "n_clusters": "graph_clusters", "n_probe": "graph_probe",
    "weighting": "behavior_weighting", "modal_candidates": "intersect_modal_k",
    "behavior_candidates": "intersect_behavior_k", "normalization": "graph_normalization",
}
#: Fields added after graphs were first cached, at the value that builds the graph as before:
#: left out of the cache key there, so existing caches still hit.
NEUTRAL = {"weighting": "window", "modal_candidates": 25, "behavior_candidates": 3, "normalization": "symmetric"}


@dataclass(frozen=True)
class GraphSpec:
    """How one modality's item graph is built (``graphs/build.py`` says what each does)."""

    mode: str = "behavior_knn"
    k: int = 10
    beta: float = 1.0
    window: int = 3
    self_loop: bool = True
    edge_weight: str = "binary"
    symmetric: str = "max"
    search: str = "auto"
    n_clusters: Optional[int] = None
    n_probe: Optional[int] = None
    weighting: str = "window"
    modal_candidates: int = 25
    behavior_candidates: int = 3
    normalization: str = "symmetric"

    def __post_init__(self):
        choice_option("graph_mode", self.mode, MODES)
        choice_option("graph_edge_weight", self.edge_weight, EDGE_WEIGHTS)
        choice_option("graph_symmetric", self.symmetric, SYMMETRIC)
        choice_option("graph_search", self.search, SEARCHES)
        choice_option("behavior_weighting", self.weighting, WEIGHTINGS)
        choice_option("graph_normalization", self.normalization, NORMALIZATIONS)
        object.__setattr__(self, "k", integer_option("knn_k", self.k, 0, "set it to e.g. 10."))
        object.__setattr__(self, "window", integer_option("behavior_window", self.window, 1, "set it to e.g. 3."))
        object.__setattr__(self, "modal_candidates", integer_option(
            "intersect_modal_k", self.modal_candidates, 1, "set it to e.g. 25."))
        object.__setattr__(self, "behavior_candidates", integer_option(
            "intersect_behavior_k", self.behavior_candidates, 0, "set it to e.g. 3."))
        object.__setattr__(self, "beta", float_option("behavior_beta", self.beta, "it weighs the behaviour term, e.g. 1.0."))
        if self.n_clusters is not None:
            integer_option("graph_clusters", self.n_clusters, 1, "or null to pick about sqrt(number of items).")
        if self.n_probe is not None:
            integer_option("graph_probe", self.n_probe, 1, "or null to pick 1/16 of the clusters.")

    @classmethod
    def from_config(cls, config) -> "GraphSpec":
        return cls(**{field: config[option] for field, option in OPTIONS.items()})

    @property
    def uses_behavior(self) -> bool:
        return self.mode != "modal_knn"

    @property
    def is_symmetric(self) -> bool:
        """Whether the normalised graph equals its transpose (propagation's backward uses it)."""
        return self.symmetric != "none" and self.normalization == "symmetric"

    def as_dict(self) -> dict:
        """The fields, less those at their neutral value (``NEUTRAL``): the cache-key settings."""
        return {k: v for k, v in asdict(self).items() if not (k in NEUTRAL and v == NEUTRAL[k])}
