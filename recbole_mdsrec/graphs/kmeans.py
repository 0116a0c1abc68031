"""k-means in torch GEMMs, spherical (unit centroids of unit vectors) or Euclidean; seeded and deterministic.

Lloyd's iterations on a sample of at most ``points_per_centroid`` points per centroid, as
faiss's ``Kmeans`` trains; each assignment is one blocked ``[sample, C]`` product. It is
faster here than ``faiss.Kmeans(spherical=True)`` at equal quality (``benchmarks/README.md``,
the approximate graph build), so the graphs and the interest centres cluster with it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from recbole_mdsrec.graphs.knn import BLOCK_MEMORY_BYTES

#: Iterations: enough for clusters that route queries well; more moved recall little.
ITERATIONS = 10
#: Points per centroid that the iterations run on (the rest are only assigned at the end).
POINTS_PER_CENTROID = 128


def spherical_kmeans(points: torch.Tensor, n_clusters: int, seed: int = 0, iterations: int = ITERATIONS,
                     points_per_centroid: int = POINTS_PER_CENTROID) -> torch.Tensor:
    """Unit centroids ``[C, d]`` of the unit rows of ``points`` ``[N, d]``."""
    return kmeans(points, n_clusters, seed, iterations, points_per_centroid, spherical=True)


def kmeans(points: torch.Tensor, n_clusters: int, seed: int = 0, iterations: int = ITERATIONS,
           points_per_centroid: int = POINTS_PER_CENTROID, spherical: bool = False) -> torch.Tensor:
    """Centroids ``[C, d]`` of ``points`` ``[N, d]``: Euclidean k-means, or with ``spherical``
    unit centroids of unit points (cosine).

    Centroids start at distinct random sample points; a cluster left empty by an iteration
    restarts at a random sample point, so all ``C`` centroids stay in use.
    """
    generator = torch.Generator().manual_seed(seed)
    n_clusters = min(n_clusters, points.shape[0])
    if n_clusters == 1:
        mean = points.mean(0, keepdim=True)
        return F.normalize(mean, dim=1) if spherical else mean
    sample = points
    if points.shape[0] > n_clusters * points_per_centroid:
        sample = points[torch.randperm(points.shape[0], generator=generator)[: n_clusters * points_per_centroid]]
    centroids = sample[torch.randperm(sample.shape[0], generator=generator)[:n_clusters]].clone()
    for _ in range(iterations):
        assign = nearest_centroids(sample, centroids, 1, spherical)[:, 0]
        sums = torch.zeros_like(centroids).index_add_(0, assign, sample)
        sizes = torch.bincount(assign, minlength=n_clusters)
        empty = sizes == 0
        if empty.any():
            sums[empty] = sample[torch.randint(sample.shape[0], (int(empty.sum()),), generator=generator)]
        centroids = F.normalize(sums, dim=1) if spherical else sums / sizes.clamp(min=1).unsqueeze(1).to(sums.dtype)
    return centroids


def nearest_centroids(points: torch.Tensor, centroids: torch.Tensor, n_nearest: int,
                      spherical: bool = True) -> torch.Tensor:
    """``[N, n_nearest]``: each point's nearest centroids, nearest first, by inner product
    (``spherical``: unit vectors) or by Euclidean distance."""
    # argmin ||x - c||² = argmax (x·c - ||c||²/2)
    offset = 0.0 if spherical else 0.5 * centroids.pow(2).sum(1)
    out = torch.empty(points.shape[0], n_nearest, dtype=torch.long)
    step = max(1, BLOCK_MEMORY_BYTES // (4 * centroids.shape[0]))
    for start in range(0, points.shape[0], step):
        out[start:start + step] = torch.topk(points[start:start + step] @ centroids.t() - offset, n_nearest, dim=1).indices
    return out
