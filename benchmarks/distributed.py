"""One process against several: test metrics and epoch time, in one run.

    python benchmarks/distributed.py [--model MDSRec] [--dataset hm] [--nproc 2] [--seeds 1,2,3]

For each seed, trains ``--model`` to early stopping once in one process (every core) and once
in ``--nproc`` processes (RecBole's distributed mode, gloo; the cores shared out), with the
grid's settings (properties/grid.yaml). Prints both runs' test metrics, the spread of the
one-process metrics over the seeds (the noise the difference is to be judged against), and
the mean epoch time of each, as a ratio.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_mdsrec import properties  # noqa: E402
from recbole_mdsrec.launch import ProcessTuning  # noqa: E402
from recbole_mdsrec.text_tables import render_table  # noqa: E402
from recbole_mdsrec.training.distributed import DistributedSettings, launch  # noqa: E402
from recbole_mdsrec.training.runner import RunRequest, run_request  # noqa: E402

METRICS = ("ndcg@10", "recall@10", "ndcg@20", "recall@20")


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return str(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="MDSRec")
    parser.add_argument("--dataset", default="hm")
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--seeds", default="1,2,3")
    args = parser.parse_args()
    files = (str(properties.path("grid.yaml")),)
    quiet = {"state": "WARNING", "show_progress": False}
    tuning = ProcessTuning.command_line()  # as run.py runs both
    tuning.apply()
    rows = []
    for seed in map(int, args.seeds.split(",")):
        request = RunRequest(args.model, args.dataset, files, {**quiet, "seed": seed})
        one = run_request(request)
        many = launch(request, DistributedSettings(nproc=args.nproc, port=free_port()), tuning)
        rows.append((seed, one, many))

    print(f"\n{args.model} on {args.dataset}, grid settings; {os.cpu_count()} cores; "
          f"1 process ({os.cpu_count()} threads) against {args.nproc} processes\n")
    print(render_table(["seed", "processes", "epochs", "mean epoch s", *(f"test {m}" for m in METRICS)],
                       [[seed, n, result.epochs, f"{statistics.mean(result.epoch_seconds):.2f}",
                         *(f"{result.test_result[m]:.4f}" for m in METRICS)]
                        for seed, one, many in rows for n, result in ((1, one), (args.nproc, many))]))
    for m in METRICS:
        ones = [one.test_result[m] for _, one, _ in rows]
        diffs = [many.test_result[m] - one.test_result[m] for _, one, many in rows]
        spread = statistics.stdev(ones) if len(ones) > 1 else float("nan")
        print(f"{m}: mean difference ({args.nproc} − 1 processes) {statistics.mean(diffs):+.4f}; "
              f"std over seeds of 1 process {spread:.4f}")
    ratio = statistics.mean(statistics.mean(many.epoch_seconds) / statistics.mean(one.epoch_seconds)
                            for _, one, many in rows)
    print(f"epoch time, {args.nproc} processes / 1 process: {ratio:.2f} (speed-up {1 / ratio:.2f}×)")


if __name__ == "__main__":
    main()
