"""RGC: item-item graphs per modality (behaviour signal, block-wise kNN, cache)."""

from recbole_mdsrec.graphs.behavior import cooccurrence
from recbole_mdsrec.graphs.build import build_modal_graph, knn_edges, propagate, to_torch_sparse
from recbole_mdsrec.graphs.cache import graph_cache_key, load_or_build
from recbole_mdsrec.graphs.knn import topk_neighbours

__all__ = [
    "build_modal_graph",
    "cooccurrence",
    "graph_cache_key",
    "knn_edges",
    "load_or_build",
    "propagate",
    "to_torch_sparse",
    "topk_neighbours",
]
