"""The cross-dataset summary: models × datasets from each comparison's ``summary.json``.

Each grid writes ``<results>/<dataset>/summary.json`` beside its ``table.md`` (the same
numbers, as plain data). This reads every dataset's file and writes one table per metric
(cells: mean ± sample std of the test metric over seeds), with the reference model's
corrected per-user verdict per dataset underneath. Nothing is retrained or recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path

from recbole_mdsrec.metrics import display_metric
from recbole_mdsrec.tables.significance import verdict_phrases
from recbole_mdsrec.text_tables import render_table

SUMMARY_METRICS = ("ndcg@10", "recall@10")


def load_comparisons(results_root: Path) -> dict[str, dict]:
    """dataset -> its comparison's summary.json (the ablation folders are not comparisons)."""
    return {path.parent.name: json.loads(path.read_text())
            for path in sorted(Path(results_root).glob("*/summary.json"))}


def _cell(entry: dict | None, metric: str) -> str:
    if entry is None:
        return "—"
    mean, std = entry["means"].get(metric), entry["stds"].get(metric)
    if mean is None:
        return f"failed: {entry['error']}" if entry.get("error") else "—"
    text = f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")
    return text + ("" if entry["converged"] else " †")


def _verdict_line(dataset: str, comparison: dict, metric: str) -> str:
    reference, verdicts = comparison["reference"], comparison["verdicts"]
    if reference is None:
        return f"- {dataset}: no reference model in this comparison."
    if verdicts is None or metric not in verdicts:
        return f"- {dataset}: {reference} not tested per user (its runs have no per-user metrics)."
    parts = verdict_phrases(verdicts[metric], "ahead of {labels} (not converged, not counted)")
    return f"- {dataset}: {reference} is " + "; ".join(parts) + "."


def build_summary(comparisons: dict[str, dict], command: str) -> str:
    datasets = list(comparisons)
    models = list(dict.fromkeys(e["label"] for c in comparisons.values() for e in c["entries"]))
    lines = ["# Results across datasets", "",
             f"Written by `{command}` from each dataset's `summary.json` (the numbers of its `table.md`); "
             "nothing is retrained. Each cell: test mean ± sample standard deviation over seeds; "
             "† marks an entry with a run that reached the epoch cap (not converged).", ""]
    lines += [f"- {d}: `{c['command']}`, seeds {', '.join(map(str, c['seeds']))}" for d, c in comparisons.items()]
    for metric in SUMMARY_METRICS:
        by_label = {d: {e["label"]: e for e in c["entries"]} for d, c in comparisons.items()}
        rows = [[model, *(_cell(by_label[d].get(model), metric) for d in datasets)] for model in models]
        lines += ["", f"## Test {display_metric(metric)}", "", render_table(["Model", *datasets], rows), "",
                  f"Verdicts on {display_metric(metric)} (per-user paired t-test, Holm-corrected across the "
                  "baselines of each dataset, p < 0.05):", ""]
        lines += [_verdict_line(d, c, metric) for d, c in comparisons.items()]
    return "\n".join(lines) + "\n"
