"""Wall time of one grid run serially (every thread per run) and with ``--jobs`` (runs side by side).

    python benchmarks/grid_jobs.py [--dataset hm] [--models GRU4Rec,SASRec] [--seeds 2] [--epochs 10] [--jobs 2]

Both grids run the same runs, each from scratch in a fresh scratch folder, one after the other, with
early stopping off so that every run trains exactly ``--epochs`` epochs; the result is the ratio of
the two wall times measured in the same invocation. Leave the machine otherwise idle.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recbole_mdsrec.text_tables import render_table  # noqa: E402


def grid_seconds(args, jobs: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        command = [sys.executable, str(REPO / "run.py"), f"--model={args.models}", f"--dataset={args.dataset}",
                   f"--seeds={args.seeds}", f"--epochs={args.epochs}", f"--stopping_step={args.epochs}",
                   f"--jobs={jobs}", f"--checkpoint_dir={scratch}/saved", "--show_progress=False", "--state=WARNING"]
        start = time.perf_counter()
        subprocess.run(command, cwd=scratch, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="hm")
    parser.add_argument("--models", default="GRU4Rec,SASRec")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    serial = grid_seconds(args, 1)
    parallel = grid_seconds(args, args.jobs)
    runs = len(args.models.split(",")) * args.seeds
    print(render_table([f"grid ({runs} runs of {args.epochs} epochs on {args.dataset})", "wall seconds", "ratio to --jobs=1"],
                       [["--jobs=1", f"{serial:.1f}", "1.00"], [f"--jobs={args.jobs}", f"{parallel:.1f}", f"{parallel / serial:.2f}"]]))


if __name__ == "__main__":
    main()
