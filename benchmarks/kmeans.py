"""Spherical k-means of the approximate graph search: the plugin's torch k-means against faiss's.

    python benchmarks/kmeans.py [--items 30000] [--dim image]

The benchmark catalogue of ``graph_build.py`` (real features tiled with 1% noise), about
sqrt(N) clusters, the same sample size (128 points per centroid) and 10 iterations for both;
quality is the spherical k-means objective, the mean cosine of every item to its nearest
centroid (higher is better). Both in this process, one after the other.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=30000)
    parser.add_argument("--dim", default="image", help="image (1280-d) or text (384-d)")
    args = parser.parse_args()

    import faiss
    import numpy as np
    import torch
    from graph_build import tiled_features

    from recbole_mdsrec.graphs import kmeans
    from recbole_mdsrec.graphs.clustered import auto_clusters
    from recbole_mdsrec.text_tables import render_table

    torch.set_flush_denormal(True)
    features, valid = tiled_features(args.dim, args.items)
    points = torch.nn.functional.normalize(torch.from_numpy(features[valid]).float(), dim=1)
    clusters = auto_clusters(points.shape[0])

    def objective(centroids) -> float:
        return float((points @ torch.as_tensor(centroids).t()).max(dim=1).values.mean())

    start = time.perf_counter()
    ours = kmeans.spherical_kmeans(points, clusters, seed=0)
    ours_s = time.perf_counter() - start
    faiss.omp_set_num_threads(torch.get_num_threads())
    reference = faiss.Kmeans(points.shape[1], clusters, niter=kmeans.ITERATIONS, seed=0, spherical=True,
                             max_points_per_centroid=kmeans.POINTS_PER_CENTROID, verbose=False)
    start = time.perf_counter()
    reference.train(np.ascontiguousarray(points.numpy()))
    faiss_s = time.perf_counter() - start
    print(f"{points.shape[0]} items x {points.shape[1]}-d, {clusters} clusters, {torch.get_num_threads()} thread(s)\n")
    print(render_table(["k-means", "seconds", "× torch", "mean cosine to nearest centroid"],
                       [["torch (graphs/kmeans.py)", f"{ours_s:.2f}", "1.00", f"{objective(ours):.4f}"],
                        ["faiss.Kmeans(spherical=True)", f"{faiss_s:.2f}", f"{faiss_s / ours_s:.2f}",
                         f"{objective(reference.centroids):.4f}"]]))


if __name__ == "__main__":
    main()
