"""What a whole side-by-side grid costs, estimated from a few measured epochs per model.

    python benchmarks/grid_cost.py [--dataset ml-100k-mm] [--batches 8] [--settings fp32,bf16]
                                   [--models UniSRec] [--set hidden_size=64]

For every model of ``results/<dataset>/runs.csv`` (its default-configuration runs, the
comparison's), each of ``--settings`` (``fp32``, ``bf16``, ``fp32+compile``, ...) measures one
training epoch (the first ``--batches`` batches after a warm-up step, scaled to the epoch)
and one validation pass, in a fresh process with the grid's settings
(``properties/grid.yaml``), as ``benchmarks/train_speed.py`` does. A run's estimated time is
its recorded epoch count times (epoch + validation); the grid's is the sum over its runs. The
recorded ``train_seconds`` of the same runs is printed beside it, so the estimate's own error
shows, and every setting is given as a ratio to the first one of the same run. ``--set``
measures the models with other options (e.g. a smaller hidden size) for the same epochs.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from recbole_mdsrec import roots  # noqa: E402
from recbole_mdsrec.text_tables import render_table  # noqa: E402
from train_speed import measure  # noqa: E402


def grid_runs(dataset: str) -> dict[str, list[dict]]:
    """model -> its default-configuration runs in the dataset's runs.csv."""
    path = roots.results_root() / dataset / "runs.csv"
    runs: dict[str, list[dict]] = {}
    for row in csv.DictReader(path.open()):
        if row["status"] == "ok" and row["params"] in ("", "{}") and not row["variant"]:
            runs.setdefault(row["model"], []).append(row)
    return runs


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k-mm")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--settings", default="fp32,bf16", help="comma-separated: PRECISION[+compile]")
    parser.add_argument("--models", help="comma-separated: only these models of the grid")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an option for every measured model (repeatable)")
    args = parser.parse_args()
    options = {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in args.set)}
    runs = grid_runs(args.dataset)
    if args.models:
        runs = {m: runs[m] for m in args.models.split(",") if m in runs}
    settings = args.settings.split(",")
    per_model, totals = [], {s: 0.0 for s in settings}
    recorded_total = 0.0
    for model, rows in runs.items():
        epochs = sum(int(r["epochs"]) for r in rows)
        recorded = sum(float(r["train_seconds"]) for r in rows)
        recorded_total += recorded
        cells = [model, str(len(rows)), str(epochs), hours(recorded)]
        for setting in settings:
            precision, _, compiled = setting.partition("+")
            measured = measure(SimpleNamespace(batches=args.batches), model, args.dataset, precision=precision,
                               compile_forward=compiled == "compile", grid=True, options=options)
            if "error" in measured:
                cells.append(f"failed: {measured['error'][:60]}")
                continue
            estimate = epochs * (measured["epoch_seconds"] + measured["eval_seconds"])
            totals[setting] += estimate
            cells.append(f"{hours(estimate)} ({measured['epoch_seconds']:.1f} + {measured['eval_seconds']:.1f} s"
                         f"{', ' + measured['precision'] if measured['precision'] != precision else ''})")
            print(f"{model} {setting}: {cells[-1]}", file=sys.stderr, flush=True)
        per_model.append(cells)
    base = totals[settings[0]]
    per_model.append(["all", str(sum(len(r) for r in runs.values())), "", hours(recorded_total),
                      *(f"{hours(t)} ({t / base:.2f}×)" if base else hours(t) for t in totals.values())])
    print(render_table(["model", "runs", "epochs", "recorded", *(f"estimated, {s} (epoch + validation)" for s in settings)],
                       per_model))


if __name__ == "__main__":
    main()
