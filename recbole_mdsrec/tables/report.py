"""``table.md`` and ``chart.png`` of a grid's outcomes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from recbole_mdsrec.files import atomic_write, write_text_atomically
from recbole_mdsrec.metrics import display_metric, metric_sort_key
from recbole_mdsrec.schema import NON_RESULT_KEYS
from recbole_mdsrec.tables import stats, tuning
from recbole_mdsrec.text_tables import render_table

# Options every table states, whatever the grid file sets: together they are the protocol.
PROTOCOL_KEYS = ("eval_args", "metrics", "topk", "valid_metric", "epochs", "stopping_step", "eval_step",
                 "MAX_ITEM_LIST_LENGTH", "train_batch_size", "modalities")
CHART_METRICS = ("ndcg@10", "recall@10")


@dataclass
class ReportInfo:
    title: str
    command: str
    seeds: list[int]
    budget: int
    shared_keys: list[str] = field(default_factory=list)  # options the grid sets for every entry
    reference: str | None = None  # the label the others are compared with
    others: str = "baseline"      # what the others are called: baseline, preset


@dataclass
class Summary:
    """One entry's test results over its successful seeds."""

    per_seed: dict[str, dict[int, float]]  # metric -> seed -> value
    means: dict[str, float]
    stds: dict[str, float | None]


def summarize(outcome, metrics: list[str]) -> Summary:
    per_seed = {m: {row["seed"]: row[f"test_{m}"] for row in outcome.ok_rows if row.get(f"test_{m}") is not None}
                for m in metrics}
    pairs = {m: stats.mean_std(values.values()) for m, values in per_seed.items()}
    return Summary(per_seed, {m: p[0] for m, p in pairs.items()}, {m: p[1] for m, p in pairs.items()})


def metric_names(outcomes) -> list[str]:
    names = {c[len("test_"):] for o in outcomes for row in o.ok_rows for c in row if c.startswith("test_")}
    return sorted(names, key=metric_sort_key)


def _cell(mean: float, std: float | None, mark: str) -> str:
    if math.isnan(mean):
        return ""
    text = f"{mean:.{stats.DECIMALS}f}" + (f" ± {std:.{stats.DECIMALS}f}" if std is not None else "")
    return {"best": f"**{text}**", "second": f"<u>{text}</u>"}.get(mark, text)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}%"


def _p(p: float | None, pairs: int) -> str:
    if p is None:
        return f"p n/a ({pairs} paired seeds)" if pairs < 2 else "p n/a (equal differences)"
    return "p<0.0001" if p < 0.0001 else f"p={p:.4f}"


def _settings(info: ReportInfo, outcomes) -> str:
    config = next((o.config for o in outcomes if o.config), None)
    if config is None:
        return ""
    keys = list(dict.fromkeys([*info.shared_keys, *PROTOCOL_KEYS]))
    return ", ".join(f"`{k}={config[k]}`" for k in keys if k in config and k not in NON_RESULT_KEYS)


def build_table(outcomes, info: ReportInfo) -> str:
    metrics = metric_names(outcomes)
    summaries = {o.label: summarize(o, metrics) for o in outcomes if o.ok_rows}
    marks = {m: stats.rank_marks({label: s.means[m] for label, s in summaries.items()}) for m in metrics}
    seeds = ", ".join(map(str, info.seeds))
    valid = next((o.config["valid_metric"] for o in outcomes if o.config), "NDCG@10")
    rows = []
    for o in outcomes:
        done = f"{len(o.ok_rows)}/{len(info.seeds)}"
        if o.label in summaries:
            s = summaries[o.label]
            rows.append([o.label, *(_cell(s.means[m], s.stds[m], marks[m][o.label]) for m in metrics), done])
        else:
            rows.append([o.label, f"failed: {o.error}", *[""] * (max(len(metrics), 1) - 1), done])
    ref = summaries.get(info.reference)
    others = {label: s for label, s in summaries.items() if label != info.reference}
    comparison = []
    if ref is not None and others:
        best_other = {m: max(others, key=lambda label: others[label].means[m]) for m in metrics}
        rows.append([f"Improvement of {info.reference} over the best {info.others}",
                     *(f"{_percent(stats.relative_improvement(ref.means[m], others[best_other[m]].means[m]))} "
                       f"(vs {best_other[m]})" for m in metrics), ""])
        comparison = _comparison(info, metrics, ref, others, marks, best_other)
    lines = [
        f"# {info.title}", "",
        f"Command: `{info.command}`", "",
        f"Test results: mean ± sample standard deviation (ddof=1) over {len(info.seeds)} seed(s) ({seeds}); "
        "**bold** is the best mean, <u>underlined</u> the second. "
        f"Every entry ran under the same settings: {_settings(info, outcomes)}. "
        f"Validation {valid} picks the best epoch (early stopping) and the tuned values; test results choose nothing. "
        + ("Tuning budget: 1 configuration per entry, the defaults only." if info.budget == 1 else
           f"Tuning budget: {info.budget} configurations per entry, the defaults first; the winner then runs for every seed."),
        "",
        render_table(["Model", *(list(map(display_metric, metrics)) or ["Result"]), "Seeds"], rows),
        *comparison,
    ]
    lines += _tuning_section(outcomes, valid)
    lines += _training_length_section(outcomes)
    failures = [(o.label, row) for o in outcomes for row in [*o.tried, *o.rows] if row["status"] != "ok"]
    failures = list({(label, row["config_hash"]): (label, row) for label, row in failures}.values())
    setup_failures = [o for o in outcomes if not o.rows and not o.tried and o.error]
    if failures or setup_failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {o.label}: {o.error}" for o in setup_failures]
        lines += [f"- {label}, seed {row['seed']} ({tuning.describe(_params(row))}): {row['error']}"
                  for label, row in failures]
    lines += ["", "Every run is a row of `runs.csv`; its resolved config is `configs/<model>[-<variant>]-<hash>.yaml`; "
              "`chart.png` plots " + " and ".join(map(display_metric, _chart_metrics(metrics)))
              + " (mean, sample std error bars).", ""]
    return "\n".join(lines)


def _comparison(info: ReportInfo, metrics, ref: Summary, others: dict[str, Summary], marks, best_other) -> list[str]:
    name = info.reference
    rows = []
    for label, other in others.items():
        cells = []
        for m in metrics:
            p, pairs = stats.paired_ttest(ref.per_seed[m], other.per_seed[m])
            cells.append(f"{_percent(stats.relative_improvement(ref.means[m], other.means[m]))}, {_p(p, pairs)}")
        rows.append([label, *cells])
    lines = ["", f"## {name} against each {info.others}", "",
             f"Relative difference of {name}'s mean, and the two-sided p-value of a paired t-test over seeds "
             "(`scipy.stats.ttest_rel` on the per-seed test values, paired by seed).", "",
             render_table([info.others.capitalize(), *map(display_metric, metrics)], rows)]
    wins = [m for m in metrics if marks[m][name] == "best" and list(marks[m].values()).count("best") == 1]
    ties = [m for m in metrics if marks[m][name] == "best" and m not in wins]
    losses = [m for m in metrics if marks[m][name] != "best"]
    lines += ["", "## Verdict", ""]
    if not losses and not ties:
        lines.append(f"{name} has the best mean on every metric.")
    else:
        if wins:
            lines.append(f"{name} has the best mean on {', '.join(map(display_metric, wins))}.")
        for m in ties:
            lines.append(f"{name} ties for the best mean on {display_metric(m)}.")
        for m in losses:
            lines.append(f"{name} does NOT win {display_metric(m)}: {best_other[m]} is better "
                         f"({others[best_other[m]].means[m]:.{stats.DECIMALS}f} against {ref.means[m]:.{stats.DECIMALS}f}).")
    return lines


def _params(row: dict) -> dict:
    return json.loads(row["params"] or "{}")


def _tuning_section(outcomes, valid: str) -> list[str]:
    column = f"valid_{valid.lower()}"
    rows = []
    for o in outcomes:
        tried = len(o.tried) or len(o.rows[:1])
        winner = "—" if o.winner is None else tuning.describe(o.winner)
        first = o.rows[0] if o.rows else None
        score = f"{first[column]:.{stats.DECIMALS}f}" if first and first.get(column) is not None else "—"
        rows.append([o.label, f"{tried} of {o.space_size}", winner, score])
    return ["", "## Tuned values", "",
            f"Chosen on validation {valid} at the first seed; the search spaces are `properties/tuning/<Model>.yaml`.", "",
            render_table(["Model", "Configurations trained", "Winner", f"Validation {valid} (first seed)"], rows)]


def _training_length_section(outcomes) -> list[str]:
    """Epochs per run against the cap: a run that reached it had not stopped early, so its
    entry is compared before convergence; the table says so rather than leave it to the csv."""
    timed = [o for o in outcomes if o.ok_rows and o.config and all(r.get("epochs") is not None for r in o.ok_rows)]
    if not timed:
        return []
    rows, capped = [], []
    for o in timed:
        cap = o.config["epochs"]
        epochs = [row["epochs"] for row in o.ok_rows]
        reached = sum(e >= cap for e in epochs)
        seconds = [row["epoch_seconds"] for row in o.ok_rows if row.get("epoch_seconds") is not None]
        if reached:
            capped.append(o.label)
        rows.append([o.label, ", ".join(map(str, epochs)), f"{reached}/{len(epochs)} (cap {cap})",
                     f"{sum(seconds) / len(seconds):.1f}" if seconds else "—"])
    lines = ["", "## Training length", "",
             "Epochs trained by each run (seed order), and the runs that reached the epoch cap instead of "
             "stopping early on validation.", "",
             render_table(["Model", "Epochs", "Reached the cap", "Seconds per epoch (mean)"], rows)]
    if capped:
        lines += ["", f"**{len(capped)} of {len(timed)} entries reached the epoch cap** in at least one run "
                      f"({', '.join(capped)}): they may gain from more epochs (`--epochs=N`), so the table "
                      "compares them before convergence."]
    return lines


def _chart_metrics(metrics: list[str]) -> list[str]:
    return [m for m in CHART_METRICS if m in metrics] or metrics[:2]


def draw_chart(outcomes, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt
    import numpy as np

    ok = [o for o in outcomes if o.ok_rows]
    metrics = _chart_metrics(metric_names(ok))
    summaries = [summarize(o, metrics) for o in ok]
    x = np.arange(len(ok))
    width = 0.8 / max(len(metrics), 1)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(ok) + 2), 3.6))
    for i, m in enumerate(metrics):
        ax.bar(x + (i - (len(metrics) - 1) / 2) * width, [s.means[m] for s in summaries], width,
               yerr=[s.stds[m] or 0.0 for s in summaries], capsize=3, label=display_metric(m))
    ax.set_xticks(x, [o.label for o in ok], rotation=30, ha="right")
    ax.set_ylabel("test (mean over seeds)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    try:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=120)
    finally:
        plt.close(fig)


def write_report(outcomes, info: ReportInfo, folder: Path) -> Path:
    folder = Path(folder)
    table = folder / "table.md"
    write_text_atomically(table, build_table(outcomes, info))
    if any(o.ok_rows for o in outcomes):
        draw_chart(outcomes, folder / "chart.png", info.title)
    return table
