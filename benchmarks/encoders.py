"""Feature extraction throughput (items/s) of the two offline encoders, by batch size and threads.

    python benchmarks/encoders.py [--items 256] [--batches 1,16,64] [--threads 1,2]

Real inputs: the first ``--items`` MovieLens-100K movies of ../shared/datasets (plot text as
``prepare`` writes it, and poster files), encoded without the feature cache. Each setting
runs once after a warm-up batch; figures are also given as ratios to the unbatched, one-thread
encoder measured in the same run. The encoders' defaults are batch 16 on every core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_mdsrec import roots  # noqa: E402
from recbole_mdsrec.text_tables import render_table  # noqa: E402
from recbole_mdsrec.data.encoders import ImageEncoder, TextEncoder  # noqa: E402
from recbole_mdsrec.data.readers import read_movielens_100k  # noqa: E402

ENCODERS = {"text": TextEncoder, "image": ImageEncoder}


def throughput(modality: str, inputs: list, batch_size: int, threads: int) -> float:
    encoder = ENCODERS[modality](batch_size=batch_size, progress=False, threads=threads)
    encoder.encode(inputs[:batch_size])  # loads the model and warms up
    start = time.perf_counter()
    encoder.encode(inputs)
    return len(inputs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--batches", default="1,16,64")
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    raw = read_movielens_100k(roots.raw_root() / "ml-100k")
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; {args.items} MovieLens-100K items\n")
    rows = []
    for modality in ENCODERS:
        inputs = [x for x in raw.modal_inputs[modality] if x is not None][: args.items]
        base = None
        for threads in map(int, args.threads.split(",")):
            for batch in map(int, args.batches.split(",")):
                rate = throughput(modality, inputs, batch, threads)
                base = base or rate
                rows.append([modality, batch, threads, f"{rate:.1f}", f"{rate / base:.2f}"])
    print(render_table(["encoder", "batch", "threads", "items/s", "× unbatched, 1 thread"], rows))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
