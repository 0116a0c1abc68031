"""Approximate top-k neighbours for large catalogues: clustered search, all in GEMMs.

Exact top-k costs ``2·N²·d`` FLOPs (``knn.topk_neighbours``). Here the normalised items are
clustered by spherical k-means (``graphs/kmeans.py``), and each item probes the ``n_probe``
clusters whose centroids are nearest to it, as in an IVF index. Rather than scanning those
clusters query by query, the search runs cluster by cluster: every item that probes a
cluster is compared with all of its members in one GEMM, and the top-k of each (item, probed
cluster) pair fills its own slot; one ``topk`` over each item's slots ends the search (memory
``O(N · n_probe · k)``, no running merge). The work stays in large matrix products and falls to
about ``2·N²·d · n_probe / n_clusters`` (for balanced clusters), plus the k-means.

A neighbour in a cluster that was not probed is missed: this is the approximation, and its
recall against the exact top-k is what ``benchmarks/graph_build.py`` reports.

The behaviour term (``bonus``) is added exactly: every pair it touches is scored as
``cos + bonus`` and merged with the clustered cosine top-k. With ``bonus >= 0`` the result
is then the exact top-k of ``cos + bonus`` whenever the clustered search found the exact
cosine top-k: an item with no bonus outside its row's cosine top-k has k items that score
at least as high.

Same conventions and output as ``knn.topk_neighbours`` (``-1`` / ``-inf`` empty slots).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.graphs._options import integer_option
from recbole_mdsrec.graphs.kmeans import nearest_centroids, spherical_kmeans
from recbole_mdsrec.graphs.knn import (
    BLOCK_MEMORY_BYTES,
    Bonus,
    _normalised_candidates,
    pair_cosine,
    search_inputs,
)

def auto_clusters(n_items: int) -> int:
    """About ``sqrt(N)`` clusters: the k-means cost (``N·C·d``) and the per-cluster GEMMs
    (``N²·d·P/C``) then shrink together."""
    return max(1, int(round(math.sqrt(n_items))))


def auto_probe(n_clusters: int) -> int:
    """Clusters each item probes: 1/16 of them, at least 8."""
    return min(n_clusters, max(8, n_clusters // 16))


def clustered_topk_neighbours(
    features: torch.Tensor,
    k: int,
    valid: Optional[torch.Tensor] = None,
    bonus: Optional[Bonus] = None,
    n_clusters: Optional[int] = None,
    n_probe: Optional[int] = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Approximate top-``k`` items of each row by ``cos(f_i, f_j) + bonus_ij`` (see the module
    docstring); arguments as ``knn.topk_neighbours``, plus the clustering's size."""
    feats, k, valid, cand_ids, indices, values = search_inputs(features, k, valid)
    n_rows, n_cand = feats.shape[0], cand_ids.numel()
    k_eff = min(k, n_cand - 1)
    if k_eff <= 0:
        return indices, values

    n_clusters = auto_clusters(n_cand) if n_clusters is None else integer_option(
        "graph_clusters", n_clusters, 1, "or null to pick about sqrt(number of items).")
    n_clusters = min(n_clusters, n_cand)
    n_probe = auto_probe(n_clusters) if n_probe is None else integer_option(
        "graph_probe", n_probe, 1, "or null to pick 1/16 of the clusters.")
    n_probe = min(n_probe, n_clusters)

    cands = _normalised_candidates(feats, cand_ids, n_cand)
    probes = nearest_centroids(cands, spherical_kmeans(cands, n_clusters, seed), n_probe)  # [n_cand, n_probe]
    # Items sorted by their nearest cluster: every cluster's members are a contiguous block.
    order = torch.argsort(probes[:, 0], stable=True)
    cands, cand_ids, probes = cands[order], cand_ids[order], probes[order]
    bounds = torch.zeros(n_clusters + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(probes[:, 0], minlength=n_clusters), 0, out=bounds[1:])
    # Slots (query · n_probe + j, one per probed cluster) grouped by cluster: who searches each.
    pair_clusters, pair_slots = torch.sort(probes.flatten(), stable=True)
    pair_bounds = torch.zeros(n_clusters + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(pair_clusters, minlength=n_clusters), 0, out=pair_bounds[1:])

    # Each slot's top-k: scores, and positions in the sorted candidates.
    slot_vals = torch.full((n_cand * n_probe, k_eff), float("-inf"))
    slot_pos = torch.full((n_cand * n_probe, k_eff), -1, dtype=torch.int32)
    for c in range(n_clusters):
        first, last = int(bounds[c]), int(bounds[c + 1])
        slots_all = pair_slots[pair_bounds[c]:pair_bounds[c + 1]]
        if first == last or slots_all.numel() == 0:
            continue
        members = cands[first:last]
        kk = min(k_eff, last - first)
        rows_per_step = max(1, BLOCK_MEMORY_BYTES // (4 * (last - first + cands.shape[1])))
        for start in range(0, slots_all.numel(), rows_per_step):
            slots = slots_all[start:start + rows_per_step]
            queries = slots // n_probe
            sims = cands[queries] @ members.t()
            own = (queries >= first) & (queries < last)  # a query never finds itself
            sims[own.nonzero().squeeze(1), queries[own] - first] = float("-inf")
            top_vals, top_cols = torch.topk(sims, kk, dim=1)
            slot_vals[slots, :kk] = top_vals
            slot_pos[slots, :kk] = (top_cols + first).to(torch.int32)
    best_vals, keep = torch.topk(slot_vals.view(n_cand, n_probe * k_eff), k_eff, dim=1)
    best_pos = slot_pos.view(n_cand, n_probe * k_eff).gather(1, keep).long()

    found = best_pos >= 0
    values[cand_ids] = torch.where(found, best_vals, float("-inf"))
    indices[cand_ids] = torch.where(found, cand_ids[best_pos.clamp(min=0)], -1)
    indices[torch.isneginf(values)] = -1
    if bonus is not None:
        indices, values = _merge_bonus(feats, valid, indices, values, bonus(0, n_rows), k_eff)
    return indices, values


def _merge_bonus(feats, valid, indices, values, extra: torch.Tensor, k: int):
    """Top-``k`` per row of the union of the cosine neighbours (bonus 0) and every pair with
    a bonus, each scored ``cos + bonus`` exactly."""
    n = indices.shape[0]
    extra = extra.to_sparse_coo().coalesce() if extra.layout != torch.sparse_coo else extra.coalesce()
    (b_rows, b_cols), b_vals = extra.indices(), extra.values().float()
    if b_vals.numel() and b_vals.min() < 0:
        raise ConfigError("graph_search approximate needs a non-negative behaviour term (behavior_beta >= 0); "
                          "set behavior_beta >= 0 or graph_search: exact.")
    keep = valid[b_rows] & valid[b_cols] & (b_rows != b_cols)
    b_rows, b_cols, b_vals = b_rows[keep], b_cols[keep], b_vals[keep]
    b_score = pair_cosine(feats, b_rows, b_cols) + b_vals

    a_rows = torch.arange(n).repeat_interleave(indices.shape[1])
    a_cols, a_score = indices.flatten(), values.flatten()
    found = a_cols >= 0
    a_rows, a_cols, a_score = a_rows[found], a_cols[found], a_score[found]
    duplicate = torch.from_numpy(np.isin((a_rows * n + a_cols).numpy(), (b_rows * n + b_cols).numpy()))
    rows = torch.cat([a_rows[~duplicate], b_rows]).numpy()
    cols = torch.cat([a_cols[~duplicate], b_cols]).numpy()
    score = torch.cat([a_score[~duplicate], b_score]).numpy()

    order = np.lexsort((cols, -score, rows))  # by row, best first, ties to the lower id
    rows, cols, score = rows[order], cols[order], score[order]
    starts = np.searchsorted(rows, rows, side="left")
    rank = np.arange(rows.size) - starts
    top = rank < k
    out_idx = torch.full_like(indices, -1)
    out_val = torch.full_like(values, float("-inf"))
    out_idx[rows[top], rank[top]] = torch.from_numpy(cols[top])
    out_val[rows[top], rank[top]] = torch.from_numpy(score[top].astype(np.float32))
    return out_idx, out_val
