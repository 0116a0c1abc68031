"""RGC: one normalised item-item graph per modality, and LightGCN-style propagation.

``build_modal_graph`` turns the features of one modality (rows = RecBole internal item ids,
row 0 = padding) and the training co-occurrence matrix ``B`` into
``Â = D^{-1/2} A D^{-1/2}``, a float32 CSR matrix ``[N, N]``, as a ``GraphSpec`` says
(``graphs/spec.py``; its config options in brackets):

1. Directed kNN edges per item, by ``mode`` (``graph_mode``), ``k`` (``knn_k``):

   - ``behavior_knn`` (default): the top-k items by modal cosine ``S`` among the items that
     co-occur with it (``B_ij > 0``); if fewer than k co-occur, the rest are filled from its
     modal kNN.  Implemented as the top-k of ``S + 3*[B > 0]``: since ``S`` lies in
     ``[-1, 1]``, every co-occurring item outranks every other one.
   - ``modal_knn``: the top-k by ``S`` alone; ``B`` is ignored.
   - ``behavior_weighted``: the top-k of ``S + beta * norm(B)``, where ``norm(B)`` divides
     each row of ``B`` by its maximum, so it lies in ``[0, 1]`` like ``S``.
   - ``intersect`` (the authors' SGP4SR code, ``docs/sgp4sr.md`` §2): the item's top
     ``modal_candidates`` by ``S`` (``intersect_modal_k``) that are also among its top
     ``behavior_candidates`` by ``B`` (``intersect_behavior_k``; ties: lower id) come first,
     in decreasing ``S``; the rest of the k are the remaining modal candidates, in
     decreasing ``S``.

2. Items lacking the modality (``mask`` False): their features say nothing, so they are
   never chosen as anyone's modal neighbour.  Under the ``behavior_*`` modes their own row
   keeps their top-k co-occurring items by count (ties: lower id first); under
   ``modal_knn`` they have no edges but the self loop.  After symmetrisation they are thus
   linked only to their behaviour neighbours.

3. Edge weights (``edge_weight``, ``graph_edge_weight``): ``binary`` (1 per kept edge), or ``similarity`` (the
   cosine ``S_ij`` clamped at 0, so that degrees stay positive: a neighbour with a
   negative cosine is dropped; a behaviour-only edge of an item lacking the modality has
   no cosine and weighs ``B_ij / max_j B_ij`` instead).

4. Symmetrise (``symmetric``, ``graph_symmetric``): ``max`` keeps ``max(A_ij, A_ji)`` (an edge chosen by either
   end is kept at full weight); ``mean`` uses ``(A_ij + A_ji) / 2`` (a one-sided edge
   counts half); ``none`` keeps the directed edges.  Then add self loops of weight 1
   (``self_loop``, ``graph_self_loop``) and normalise (``normalization``,
   ``graph_normalization``): ``symmetric`` ``D^{-1/2} A D^{-1/2}``, or ``row_mean``
   ``D^{-1} A`` (each row averages its neighbours).  Rows of items without any edge stay
   empty; row and column 0 (padding) are always empty.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp
import torch

from recbole_mdsrec.errors import ConfigError, DataError
from recbole_mdsrec.graphs.clustered import clustered_topk_neighbours
from recbole_mdsrec.graphs.knn import pair_cosine, topk_neighbours
from recbole_mdsrec.graphs.propagate import to_torch_sparse
from recbole_mdsrec.graphs.spec import GraphSpec

#: ``search='auto'`` uses the clustered (approximate) search from this many items with the
#: modality on; below it the exact search takes about a minute or less (benchmarks/README.md).
AUTO_APPROXIMATE_ITEMS = 100_000
#: Added to S for co-occurring items under behavior_knn; > max(S) - min(S) = 2.
BEHAVIOR_RANK_OFFSET = 3.0
DEFAULT_SPEC = GraphSpec()


def build_modal_graph(features, mask, behavior: Optional[sp.spmatrix], spec: GraphSpec = DEFAULT_SPEC,
                      *, block_size: Optional[int] = None) -> sp.csr_matrix:
    """The normalised graph of one modality (see module docstring).

    Args:
        features, mask, behavior, block_size: as :func:`knn_edges`, which chooses the
            directed edges.
        spec: every option of the graph; ``spec.window`` only shapes ``behavior``, which
            the caller built (``behavior.cooccurrence``).
    """
    adjacency = knn_edges(features, mask, behavior, spec, block_size=block_size)
    if spec.symmetric == "max":
        adjacency = adjacency.maximum(adjacency.T)
    elif spec.symmetric == "mean":
        adjacency = (adjacency + adjacency.T) * 0.5
    if spec.self_loop:
        n = adjacency.shape[0]
        items = np.arange(1, n)
        adjacency = adjacency + sp.csr_matrix((np.ones(n - 1), (items, items)), shape=(n, n))
    return _normalise(adjacency.tocsr(), spec.normalization)


def knn_edges(features, mask, behavior: Optional[sp.spmatrix], spec: GraphSpec = DEFAULT_SPEC,
              *, block_size: Optional[int] = None) -> sp.csr_matrix:
    """The directed kNN adjacency (steps 1-3 of the module docstring), float64 CSR ``[N, N]``.

    Row i holds the neighbours item i chose, with their edge weights; not yet symmetric,
    without self loops, not normalised.

    Args:
        features: ``[N, d]`` array/tensor, row i = item id i, row 0 = padding.
        mask: ``[N]`` bool, False where the item lacks the modality (None: all have it).
        behavior: ``[N, N]`` co-occurrence counts (``behavior.cooccurrence``); required by
            the ``behavior_*`` modes, ignored by ``modal_knn``.
        spec: ``search`` picks ``exact`` (``knn.topk_neighbours``), ``approximate``
            (``clustered``, with ``n_clusters`` and ``n_probe``; None picks them), or
            ``auto`` (approximate from ``AUTO_APPROXIMATE_ITEMS`` items with the modality).
        block_size: rows per block of the exact search (None: from memory); speed only.
    """
    feats = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    n = feats.shape[0] if feats.dim() == 2 else -1
    valid = _item_mask(mask, n)
    counts = _behavior_counts(behavior, n, spec.mode) if spec.uses_behavior else None

    approximate = spec.search == "approximate" or (spec.search == "auto" and int(valid.sum()) >= AUTO_APPROXIMATE_ITEMS)

    def search(k: int, bonus):
        if approximate:
            return clustered_topk_neighbours(feats, k, valid, bonus, spec.n_clusters, spec.n_probe)
        return topk_neighbours(feats, k, valid, bonus, block_size)

    if spec.mode == "intersect":
        candidates, _ = search(spec.modal_candidates, None)
        indices = _intersect_first(candidates, _top_behavior(counts, spec.behavior_candidates), spec.k)
        values = None
    else:
        indices, values = search(spec.k, _bonus(counts, spec.mode, spec.beta))
    rows, cols, weights = _modal_edges(feats, indices, values, spec.edge_weight, exact_cosine=spec.mode == "modal_knn")
    if counts is not None:
        lacking = np.flatnonzero(~valid.numpy())
        extra = _behavior_edges(counts, lacking[lacking != 0], spec.k, spec.edge_weight)
        rows, cols, weights = (np.concatenate(pair) for pair in zip((rows, cols, weights), extra))

    adjacency = sp.coo_matrix((weights, (rows, cols)), shape=(n, n)).tocsr()
    adjacency.eliminate_zeros()  # similarity edges clamped to 0
    adjacency.sort_indices()
    return adjacency


def _item_mask(mask, n: int) -> torch.Tensor:
    """Which items may be modal neighbours: the mask, with the padding row always excluded."""
    if n < 1:
        raise DataError("item features must be a 2-D [n_items, dim] array with row 0 for padding.")
    if mask is None:
        valid = torch.ones(n, dtype=torch.bool)
    else:
        valid = torch.as_tensor(np.asarray(mask, dtype=bool)).clone()
        if valid.shape != (n,):
            raise DataError(
                f"modality mask has shape {tuple(valid.shape)} but the features have {n} rows; "
                "give one flag per feature row (row 0 = padding)."
            )
    valid[0] = False
    return valid


def _behavior_counts(behavior, n: int, mode: str) -> sp.csr_matrix:
    """``B`` as float32 CSR without explicit zeros and without the padding row/column."""
    if behavior is None:
        raise ConfigError(
            f"graph_mode {mode} needs the co-occurrence matrix of the training sequences; pass "
            "behavior=cooccurrence(...) or set graph_mode: modal_knn."
        )
    if behavior.shape != (n, n):
        raise DataError(
            f"co-occurrence matrix has shape {behavior.shape} but the features have {n} rows; "
            "build it with n_items equal to the number of feature rows (item_num)."
        )
    coo = sp.coo_matrix(behavior, dtype=np.float32)
    if coo.nnz and coo.data.min() < 0:
        raise DataError("co-occurrence matrix has negative entries; pass counts from cooccurrence().")
    keep = (coo.data != 0) & (coo.row != coo.col) & (coo.row != 0) & (coo.col != 0)
    counts = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=(n, n))
    counts.sort_indices()
    return counts


def _bonus(counts: Optional[sp.csr_matrix], mode: str, beta: float):
    """The behaviour term added to ``S`` before ranking, as a per-row-block callable."""
    if counts is None:
        return None
    if mode == "behavior_knn":
        bonus = counts.copy()
        bonus.data[:] = BEHAVIOR_RANK_OFFSET
    else:
        bonus = _row_normalised(counts).multiply(beta).tocsr()

    def rows(start: int, end: int) -> torch.Tensor:
        return to_torch_sparse(bonus[start:end])

    return rows


def _top_behavior(counts: sp.csr_matrix, m: int) -> torch.Tensor:
    """``[N, m]``: each item's top-m co-occurring items by ``B`` (ties: lower id), -1 padded."""
    n = counts.shape[0]
    top = torch.full((n, m), -1, dtype=torch.long)
    rows, cols, _ = _behavior_edges(counts, np.arange(n), m, "binary")
    slot = np.arange(rows.size) - np.searchsorted(rows, rows, side="left")
    top[torch.from_numpy(rows), torch.from_numpy(slot)] = torch.from_numpy(cols.astype(np.int64))
    return top


def _intersect_first(candidates: torch.Tensor, behavior: torch.Tensor, k: int) -> torch.Tensor:
    """``[N, k]``: each row's ``candidates`` (best first) that are in its ``behavior`` list,
    then the others, keeping their order within each group; -1 slots stay last."""
    width = candidates.shape[1]
    member = (candidates.unsqueeze(2) == behavior.unsqueeze(1)).any(2) & (candidates >= 0)
    rank = torch.arange(width).expand_as(candidates) + width * (~member) + 2 * width * (candidates < 0)
    order = torch.argsort(rank, dim=1, stable=True)[:, :k]
    return torch.gather(candidates, 1, order)


def _row_normalised(counts: sp.csr_matrix) -> sp.csr_matrix:
    """Each row divided by its maximum, so entries lie in ``(0, 1]``."""
    row_max = counts.max(axis=1).toarray().ravel()
    scale = np.divide(1.0, row_max, out=np.zeros_like(row_max), where=row_max > 0)
    return sp.diags(scale.astype(np.float32)) @ counts


def _modal_edges(feats, indices, values, edge_weight: str, exact_cosine: bool):
    """Directed kNN edges ``(rows, cols, weights)`` as numpy arrays."""
    keep = indices >= 0
    rows = keep.nonzero()[:, 0]
    cols = indices[keep]
    if edge_weight == "binary":
        weights = torch.ones(rows.numel())
    else:
        # With a behaviour bonus the ranking values are not cosines: recompute those.
        cosine = values[keep] if exact_cosine else pair_cosine(feats, rows, cols)
        weights = cosine.clamp_min(0)
    return rows.numpy(), cols.numpy(), weights.numpy().astype(np.float64)


def _behavior_edges(counts: sp.csr_matrix, items: np.ndarray, k: int, edge_weight: str):
    """For ``items``, edges to their top-k co-occurring items by count (ties: lower id)."""
    sub = counts[items].tocoo()
    rows, cols, vals = items[sub.row], sub.col, sub.data.astype(np.float64)
    order = np.lexsort((cols, -vals, rows))
    rows, cols, vals = rows[order], cols[order], vals[order]
    row_start = np.searchsorted(rows, rows, side="left")
    top = np.arange(rows.size) - row_start < k
    # Each row is sorted by decreasing count, so its first entry is its maximum.
    weights = np.ones(rows.size) if edge_weight == "binary" else vals / vals[row_start]
    return rows[top], cols[top], weights[top]


def _normalise(adjacency: sp.csr_matrix, normalization: str = "symmetric") -> sp.csr_matrix:
    """``D^{-1/2} A D^{-1/2}`` (``symmetric``) or ``D^{-1} A`` (``row_mean``); rows with
    zero degree stay empty."""
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    rows = np.repeat(np.arange(adjacency.shape[0]), np.diff(adjacency.indptr))
    if normalization == "row_mean":
        scaled = adjacency.data / degree[rows]
    else:
        inv_sqrt = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
        scaled = adjacency.data * inv_sqrt[rows] * inv_sqrt[adjacency.indices]
    graph = sp.csr_matrix((scaled.astype(np.float32), adjacency.indices, adjacency.indptr), shape=adjacency.shape)
    graph.sort_indices()
    return graph
