"""Time and peak memory of building a ``modal_knn`` graph (k = 10) as the catalogue grows.

Compares the exact block-wise build (``recbole_mdsrec.graphs``), the approximate clustered
build (``graph_search: approximate``, default clusters and probes), faiss's exact
inner-product search (``IndexFlatIP``) and its IVF index (``IndexIVFFlat``, the same number
of clusters and probes as the clustered build), and the dense approach of MMRec (the full
N x N cosine matrix, then ``topk``). Every kind builds the same graph through
``build_modal_graph``; only its top-k search differs. Each build is reported as a multiple of
the exact GEMM floor ``2*N^2*d / rate``, the torch.mm FLOP rate being measured in the same
process just before and after the build (the better of the two is used, so the floor is
never flattering). The approximate build's recall is the share of the exact top-k it finds,
over 2,000 random items with the modality (their exact top-k by one GEMM, after the build).

Features: the real reference features of MovieLens-100K (text 384-d, poster 1280-d, with
its real missing-poster mask), tiled to N items with a small Gaussian perturbation (1% of
the features' standard deviation) so that copies are distinct.

Each measurement runs in a fresh subprocess; its peak RSS is ``VmHWM`` of /proc/self/status,
reset after the inputs are made (so it is the peak during the build, inputs included).

    python benchmarks/graph_build.py                     # 10k..200k, text and image
    python benchmarks/graph_build.py --sizes 10000,50000 --dims text
    python benchmarks/graph_build.py --quick             # a smoke run, seconds
    python benchmarks/graph_build.py --kinds approximate --sizes 200000 --dims image
    python benchmarks/graph_build.py --kinds exact,faiss_exact,approximate,faiss_ivf --sizes 10000,50000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recbole_mdsrec import roots  # noqa: E402

REFERENCE = roots.shared_root() / "reference" / "ml-100k-mm"
DIMS = {"text": "text_feat.npy", "image": "image_feat.npy"}
K = 10
GIB = 2**30
# Fraction of available memory the dense N x N matrix may take before we call it "does not fit".
DENSE_MEMORY_SHARE = 0.8
KINDS = ("exact", "approximate", "faiss_exact", "faiss_ivf", "dense")
RECALL_SAMPLE = 2000


# --- measurements (each runs in its own subprocess) ----------------------------------------


def tiled_features(dim: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``[n, d]`` features (row 0 = padding) from the real ones, tiled and perturbed."""
    real = np.load(REFERENCE / DIMS[dim])
    mask = np.load(REFERENCE / "image_mask.npy") if dim == "image" else np.ones(len(real), bool)
    rows = np.r_[0, np.arange(n - 1) % len(real)]
    noise_scale = 0.01 * float(real[mask].std())
    features = np.empty((n, real.shape[1]), np.float32)
    rng = np.random.default_rng(seed)
    for start in range(0, n, 65536):  # chunks keep the noise temporaries small
        stop = min(start + 65536, n)
        features[start:stop] = real[rows[start:stop]]
        features[start:stop] += noise_scale * rng.standard_normal((stop - start, real.shape[1]), np.float32)
    valid = mask[rows]
    features[0], valid[0] = 0, False
    return features, valid


def gemm_rate(dim: int) -> float:
    """torch.mm FLOP/s for ``[4096, d] @ [d, 8192]`` (best of 5)."""
    import torch

    a, b = torch.randn(4096, dim), torch.randn(8192, dim)
    out = torch.empty(4096, 8192)
    torch.mm(a, b.t(), out=out)
    best = min(_timed(lambda: torch.mm(a, b.t(), out=out)) for _ in range(5))
    return 2 * 4096 * 8192 * dim / best


def dense_topk(features, k, valid=None, bonus=None, block_size=None):
    """MMRec's kNN step (``build_sim`` then ``topk``), with self and invalid items excluded
    so that it builds the very same graph; same signature as ``topk_neighbours``."""
    import torch

    x = torch.nn.functional.normalize(torch.as_tensor(features, dtype=torch.float32), dim=1)
    sim = torch.mm(x, x.t())  # the dense N x N matrix
    sim.fill_diagonal_(float("-inf"))
    if valid is not None:
        sim[:, ~valid] = float("-inf")
    values, indices = torch.topk(sim, k, dim=-1)
    if valid is not None:
        values[~valid], indices[~valid] = float("-inf"), -1
    return indices, values


def faiss_topk(features, k, valid=None, bonus=None, block_size=None, ivf: bool = False):
    """faiss's search of every valid item's top-k by cosine (inner product of unit rows),
    itself excluded; same signature and output as ``topk_neighbours``. ``ivf``: an
    ``IndexIVFFlat`` with the clustered build's default clusters and probes."""
    import faiss
    import torch

    from recbole_mdsrec.graphs.clustered import auto_clusters, auto_probe

    feats = torch.as_tensor(features, dtype=torch.float32)
    valid = torch.ones(len(feats), dtype=torch.bool) if valid is None else torch.as_tensor(valid)
    ids = valid.nonzero().squeeze(1)
    x = np.ascontiguousarray(torch.nn.functional.normalize(feats[ids], dim=1).numpy())
    faiss.omp_set_num_threads(torch.get_num_threads())
    if ivf:
        n_clusters = auto_clusters(len(x))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(x.shape[1]), x.shape[1], n_clusters, faiss.METRIC_INNER_PRODUCT)
        index.train(x)
        index.nprobe = auto_probe(n_clusters)
    else:
        index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    scores, found = index.search(x, k + 1)  # each item finds itself first (or ties with itself)
    own = found == np.arange(len(x))[:, None]
    keep = np.where(own.any(axis=1, keepdims=True), ~own, np.arange(k + 1) < k)  # drop self, else the last
    found = found[keep].reshape(len(x), k)
    scores = scores[keep].reshape(len(x), k)
    indices = torch.full((len(feats), k), -1, dtype=torch.long)
    values = torch.full((len(feats), k), float("-inf"))
    hit = torch.from_numpy(found) >= 0
    indices[ids] = torch.where(hit, ids[torch.from_numpy(found).clamp(min=0)], -1)
    values[ids] = torch.where(hit, torch.from_numpy(scores), float("-inf"))
    return indices, values


def measure(kind: str, dim: str, n: int) -> dict:
    import torch

    from recbole_mdsrec.graphs import build
    from recbole_mdsrec.graphs.spec import GraphSpec

    features, valid = tiled_features(dim, n)
    found = {}
    # The same build in every kind, with another top-k search in place of the plugin's exact one.
    replacement = {"dense": dense_topk, "faiss_exact": faiss_topk,
                   "faiss_ivf": lambda *a, **kw: faiss_topk(*a, **kw, ivf=True)}.get(kind)
    if replacement is not None:
        build.topk_neighbours = replacement
    search_name = "clustered_topk_neighbours" if kind == "approximate" else "topk_neighbours"
    search = getattr(build, search_name)

    def keeping_indices(*args, **kwargs):  # the directed top-k, for the recall afterwards
        found["indices"], values = search(*args, **kwargs)
        return found["indices"], values

    setattr(build, search_name, keeping_indices)
    rates = [gemm_rate(features.shape[1])] if kind != "dense" else []
    _reset_peak_rss()
    rss_inputs = _status_kib("VmRSS")
    spec = GraphSpec(mode="modal_knn", k=K, search="approximate" if kind == "approximate" else "exact")
    seconds = _timed(lambda: build.build_modal_graph(features, valid, None, spec))
    peak = _status_kib("VmHWM")
    if kind != "dense":
        rates.append(gemm_rate(features.shape[1]))
    return {
        "seconds": seconds,
        "peak_gib": peak * 1024 / GIB,
        "inputs_gib": rss_inputs * 1024 / GIB,
        "rate": max(rates) if rates else None,
        "threads": torch.get_num_threads(),
        "recall": recall_of(found["indices"], features, valid),
    }


def recall_of(indices, features, valid) -> float:
    """Share of the exact top-K of ``RECALL_SAMPLE`` random valid items that ``indices`` holds."""
    import torch

    rng = np.random.default_rng(1)
    candidates = np.flatnonzero(valid)
    rows = torch.from_numpy(rng.choice(candidates, min(RECALL_SAMPLE, candidates.size), replace=False))
    x = torch.nn.functional.normalize(torch.from_numpy(features), dim=1)
    sims = x[rows] @ x.t()
    sims[:, torch.from_numpy(~valid)] = float("-inf")
    sims[torch.arange(len(rows)), rows] = float("-inf")
    exact = torch.topk(sims, K, dim=1).indices
    hits = sum(len(set(a.tolist()) & set(e.tolist())) for a, e in zip(indices[rows], exact))
    return hits / exact.numel()


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> None:
    # "5" resets VmHWM to the current RSS (Linux >= 4.0), so the peak excludes input making.
    Path("/proc/self/clear_refs").write_text("5")


# --- driver --------------------------------------------------------------------------------


def run_child(kind: str, dim: str, n: int) -> dict:
    command = [sys.executable, __file__, "--child", kind, dim, str(n)]
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def dense_need_gib(n: int, d: int) -> float:
    """The N x N float32 matrix plus the features and their normalised copy."""
    return (4 * n * n + 2 * 4 * n * d) / GIB


def available_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024 / GIB
    return 0.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,50000,100000,200000", help="item counts, comma-separated")
    parser.add_argument("--dims", default="text,image", help="modalities: text (384-d), image (1280-d)")
    parser.add_argument("--quick", action="store_true", help="sizes 2000,5000 only: a smoke run")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"builds to run, from {', '.join(KINDS)}")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "DIM", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, dim, n = args.child
        print(json.dumps(measure(kind, dim, int(n))))
        return

    sizes = [2000, 5000] if args.quick else [int(s) for s in args.sizes.split(",")]
    dims = args.dims.split(",")
    unknown = set(dims) - set(DIMS)
    if unknown:
        parser.error(f"--dims: unknown {sorted(unknown)}; choose from {', '.join(DIMS)}")
    kinds = args.kinds.split(",")
    if set(kinds) - set(KINDS) or kinds == ["dense"]:
        parser.error(f"--kinds: choose from {', '.join(KINDS)}, with more than dense among them")

    from recbole_mdsrec.text_tables import render_table

    print(f"modal_knn graph, k = {K}; {os.cpu_count()} CPU cores; load average {_load()} at the start\n")
    rows = []
    for dim in dims:
        d = int(np.load(REFERENCE / DIMS[dim], mmap_mode="r").shape[1])
        for n in sizes:
            runs = {}
            for kind in kinds:
                need = dense_need_gib(n, d)
                if kind == "dense" and need >= DENSE_MEMORY_SHARE * available_gib():
                    runs[kind] = {"skipped": f"does not fit (needs {need:.1f} GiB)"}
                    continue
                print(f"{dim} {n:,} {kind} ...", file=sys.stderr, flush=True)
                runs[kind] = run_child(kind, dim, n)
            rate = max(r["rate"] for r in runs.values() if r.get("rate"))
            floor = 2 * n * n * d / rate
            exact_seconds = runs["exact"]["seconds"] if "exact" in runs else None
            for kind, r in runs.items():
                if "skipped" in r:
                    rows.append([f"{dim} ({d}-d)", f"{n:,}", kind, r["skipped"], "–", "–", "–", "–"])
                    continue
                rows.append([f"{dim} ({d}-d)", f"{n:,}", kind, f"{r['seconds']:.1f} s",
                             f"{r['seconds'] / exact_seconds:.2f}" if exact_seconds else "–",
                             f"{r['seconds'] / floor:.2f} (floor {floor:.1f} s at {rate / 1e9:.0f} GFLOP/s)",
                             f"{r['recall']:.3f}", f"{r['peak_gib']:.2f} GiB ({r['inputs_gib']:.2f})"])
    print(render_table(["features", "items", "search", "build", "× exact (plugin)", "× exact GEMM floor",
                        "recall@10", "peak RSS (inputs)"], rows))
    # Other processes on the machine slow the builds and the rate probes unevenly: say so.
    print(f"\nload average {_load()} at the end")


if __name__ == "__main__":
    main()
