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
from recbole_mdsrec.tables import claims
from recbole_mdsrec.tables.significance import verdict_phrases
from recbole_mdsrec.text_tables import render_table

SUMMARY_METRICS = ("ndcg@10", "recall@10")


def load_comparisons(results_root: Path, ablation: bool = False) -> dict[str, dict]:
    """dataset -> its comparison's summary.json (``ablation``: its ablation's, under ``ablation/``)."""
    pattern = "*/ablation/summary.json" if ablation else "*/summary.json"
    return {(path.parent.parent if ablation else path.parent).name: json.loads(path.read_text())
            for path in sorted(Path(results_root).glob(pattern))}


READINGS = ("MDSRec-full", "MDSRec-authors")  # the two readings whose screening picks MDSRec's default


def validation_ranks(comparisons: dict[str, dict], metric: str,
                     among: tuple[str, ...] | None = None) -> dict[str, dict[str, tuple[float, int]]]:
    """dataset -> label -> (validation mean of ``metric``, its rank there; 1 = best), ranked
    among every entry or, with ``among``, among those labels alone."""
    ranks = {}
    for dataset, comparison in comparisons.items():
        values = {e["label"]: e.get("valid_means", {}).get(metric) for e in comparison["entries"]
                  if among is None or e["label"] in among}
        values = {label: v for label, v in values.items() if v is not None}
        order = sorted(values, key=lambda label: -values[label])
        ranks[dataset] = {label: (values[label], order.index(label) + 1) for label in values}
    return ranks


def _rank_table(ranks: dict[str, dict[str, tuple[float, int]]]) -> str:
    """Entries × datasets (validation value and rank) with each entry's mean rank; rows: most
    datasets first, then by mean rank."""
    datasets = list(ranks)
    labels = list(dict.fromkeys(label for by_label in ranks.values() for label in by_label))

    def mean_rank(label):
        held = [ranks[d][label][1] for d in datasets if label in ranks[d]]
        return sum(held) / len(held), len(held)

    rows = []
    for label in sorted(labels, key=lambda label: (-mean_rank(label)[1], mean_rank(label)[0])):
        cells = [f"{ranks[d][label][0]:.4f} ({ranks[d][label][1]})" if label in ranks[d] else "—" for d in datasets]
        average, count = mean_rank(label)
        rows.append([label, *cells, f"{average:.2f} ({count} of {len(datasets)})"])
    return render_table(["Entry", *datasets, "Mean rank (datasets)"], rows)


def build_screening(comparisons: dict[str, dict], command: str, metric: str = "ndcg@10") -> str:
    """Each entry's validation ``metric`` per dataset with its rank, and its mean rank over
    the datasets it ran on: the screening that picks a default (test metrics choose nothing).
    First the two readings ranked against each other alone, then every entry."""
    shown = display_metric(metric)
    lines = ["# Screening on validation", "",
             f"Written by `{command}` from each dataset's `ablation/summary.json`; nothing is retrained. "
             f"Each cell: validation {shown}, mean over the seeds run, and its rank among the entries of "
             "that dataset (1 = best). Test metrics are not read. Rows: most datasets first, then by mean rank.", ""]
    lines += [f"- {d}: `{c['command']}`, seeds {', '.join(map(str, c['seeds']))}" for d, c in comparisons.items()]
    readings = {d: r for d, r in validation_ranks(comparisons, metric, READINGS).items() if len(r) == len(READINGS)}
    if readings:
        lines += ["", "## The two readings, ranked against each other", "",
                  "On the datasets where both ran; MDSRec's default is the one with the better mean rank here.", "",
                  _rank_table(readings)]
    lines += ["", "## Every entry", "", _rank_table(validation_ranks(comparisons, metric))]
    return "\n".join(lines) + "\n"


def _cell(entry: dict | None, metric: str, planned_seeds: int) -> str:
    """Mean ± std; an entry with fewer seeds than its grid plans says how many it has."""
    if entry is None:
        return "—"
    mean, std = entry["means"].get(metric), entry["stds"].get(metric)
    if mean is None:
        return f"failed: {entry['error']}" if entry.get("error") else "—"
    text = f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")
    if entry["seeds"] < planned_seeds:
        text += f" ({entry['seeds']}/{planned_seeds} seeds)"
    return text + ("" if entry["converged"] else " †")


def _state(comparison: dict) -> str:
    """``complete`` or ``partial: N of M runs``, from the entries' seed counts."""
    planned = len(comparison["entries"]) * len(comparison["seeds"])
    done = sum(e["seeds"] for e in comparison["entries"])
    return "complete" if done >= planned else f"partial: {done} of {planned} runs"


def _verdict_line(dataset: str, comparison: dict, metric: str) -> str:
    reference, verdicts = comparison["reference"], comparison["verdicts"]
    if reference is None:
        return f"- {dataset}: no reference model in this comparison."
    if not any(e["label"] == reference and e["seeds"] for e in comparison["entries"]):
        return f"- {dataset}: {reference} has no finished runs yet."
    if verdicts is None or metric not in verdicts:
        return f"- {dataset}: {reference} not tested per user (its runs have no per-user metrics)."
    parts = verdict_phrases(verdicts[metric], "ahead of {labels} (not converged, not counted)")
    return f"- {dataset}: {reference}: " + "; ".join(parts) + "."


def build_summary(comparisons: dict[str, dict], command: str) -> str:
    datasets = list(comparisons)
    models = list(dict.fromkeys(e["label"] for c in comparisons.values() for e in c["entries"]))
    lines = ["# Results across datasets", "",
             f"Written by `{command}` from each dataset's `summary.json` (the numbers of its `table.md`); "
             "nothing is retrained. Each cell: test mean ± sample standard deviation over seeds; "
             "† marks an entry with a run that reached the epoch cap (not converged); \"(n/N seeds)\" one "
             "whose grid has not finished all its seeds yet.", ""]
    lines += [f"- {d}: `{c['command']}`, seeds {', '.join(map(str, c['seeds']))}; {_state(c)}"
              for d, c in comparisons.items()]
    for metric in SUMMARY_METRICS:
        by_label = {d: {e["label"]: e for e in c["entries"]} for d, c in comparisons.items()}
        rows = [[model, *(_cell(by_label[d].get(model), metric, len(comparisons[d]["seeds"])) for d in datasets)]
                for model in models]
        lines += ["", f"## Test {display_metric(metric)}", "", render_table(["Model", *datasets], rows), "",
                  f"Verdicts on {display_metric(metric)} (per-user paired t-test, Holm-corrected across the "
                  "baselines of each dataset, p < 0.05):", ""]
        lines += [_verdict_line(d, c, metric) for d, c in comparisons.items()]
    lines += _claims_section(comparisons)
    return "\n".join(lines) + "\n"


def _claims_section(comparisons: dict[str, dict]) -> list[str]:
    """The paper's claims × datasets per metric, then each dataset's pairs with their
    corrected p-values (as each table's ``claims``, ``tables/claims.py``)."""
    checked = {d: c["claims"] for d, c in comparisons.items() if c.get("claims")}
    if not checked:
        return []
    lines = ["", "## The paper's claims", "", claims.LEGEND]
    for metric in SUMMARY_METRICS:
        statements = list(dict.fromkeys(c["statement"] for by_metric in checked.values()
                                        for c in by_metric.get(metric, [])))
        if not statements:
            continue
        by_statement = {d: {c["statement"]: c for c in by_metric.get(metric, [])} for d, by_metric in checked.items()}
        rows = [[statement, *(claims.status_cell(by_statement[d][statement]) if statement in by_statement[d] else "—"
                              for d in checked)] for statement in statements]
        lines += ["", f"### {display_metric(metric)}", "", render_table(["Claim", *checked], rows), ""]
        lines += [claims.detail_line(by_statement[d][statement], f"{d}, {by_statement[d][statement]['title']}")
                  for statement in statements for d in checked if statement in by_statement[d]]
    return lines
