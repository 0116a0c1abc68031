"""The accuracy guard of a precision default: runs in one precision against the same runs in fp32.

    python benchmarks/precision_guard.py [--dataset ml-100k-mm] [--trial results/trials/precision]
                                         [--models SASRec,MDSRec]

The fp32 runs are the default-configuration rows of ``results/<dataset>/runs.csv`` (the
committed grid); the others come from a grid run with ``--precision=bf16`` (or ``--compile``)
into ``--trial``, e.g.

    python run.py --model=SASRec,MDSRec --dataset=ml-100k-mm --seeds=3 --precision=bf16 \\
        --results_dir=results/trials/precision

Runs are paired by seed. A metric passes when the mean paired difference is within the fp32
runs' own seed standard deviation and the paired t-test over seeds does not reject equality
at 0.05; the default may change only if every model and metric passes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_mdsrec import roots  # noqa: E402
from recbole_mdsrec.tables.stats import mean_std, paired_ttest  # noqa: E402
from recbole_mdsrec.tables.store import RunStore  # noqa: E402
from recbole_mdsrec.text_tables import render_table  # noqa: E402

METRICS = ("valid_ndcg@10", "test_ndcg@10")


def default_runs(folder: Path, model: str) -> dict[int, dict]:
    """seed -> the model's successful default-configuration run in ``folder``."""
    return {row["seed"]: row for row in RunStore(folder).rows.values()
            if row["model"] == model and row["status"] == "ok" and not row["variant"] and row["params"] in ("", "{}")}


def compare(reference: dict[int, dict], trial: dict[int, dict], metric: str) -> dict:
    seeds = sorted(set(reference) & set(trial))
    base = {s: float(reference[s][metric]) for s in seeds}
    other = {s: float(trial[s][metric]) for s in seeds}
    difference = np.array([other[s] - base[s] for s in seeds])
    _, noise = mean_std(base.values())
    p, pairs = paired_ttest(other, base)
    mean_difference = float(difference.mean()) if pairs else float("nan")
    passed = pairs >= 2 and noise is not None and abs(mean_difference) <= noise and (p is None or p >= 0.05)
    return {"pairs": pairs, "base": base, "other": other, "difference": mean_difference, "noise": noise,
            "p": p, "passed": passed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k-mm")
    parser.add_argument("--trial", default="results/trials/precision", help="results folder of the trial grid")
    parser.add_argument("--models", default="SASRec,MDSRec")
    args = parser.parse_args()
    reference_folder = roots.results_root() / args.dataset
    trial_folder = Path(args.trial) / args.dataset
    rows, all_passed = [], True
    for model in args.models.split(","):
        reference, trial = default_runs(reference_folder, model), default_runs(trial_folder, model)
        for metric in METRICS:
            c = compare(reference, trial, metric)
            all_passed &= c["passed"]
            seeds = sorted(c["base"])
            rows.append([model, metric, str(c["pairs"]),
                         " / ".join(f"{c['base'][s]:.4f}" for s in seeds),
                         " / ".join(f"{c['other'][s]:.4f}" for s in seeds),
                         f"{c['difference']:+.4f}", "" if c["noise"] is None else f"{c['noise']:.4f}",
                         "n/a" if c["p"] is None else f"{c['p']:.2f}", "yes" if c["passed"] else "no"])
    print(render_table(["model", "metric", "seeds", "fp32 (by seed)", "trial (by seed)", "mean difference",
                        "fp32 seed std", "paired t-test p", "within noise"], rows))
    print(f"\nguard {'passed' if all_passed else 'FAILED'}: trial runs from {trial_folder}, fp32 runs from "
          f"{reference_folder}")


if __name__ == "__main__":
    main()
