"""``table.md`` and ``chart.png`` of a grid's outcomes."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from recbole_mdsrec.files import atomic_write, write_text_atomically
from recbole_mdsrec.metrics import display_metric, metric_sort_key
from recbole_mdsrec.schema import NON_RESULT_KEYS
from recbole_mdsrec.tables import claims, significance, stats, tuning
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
    planned_runs: int | None = None  # entries x seeds; more than the finished runs = a partial table


@dataclass
class Summary:
    """One entry's test results over its successful seeds."""

    per_seed: dict[str, dict[int, float]]  # metric -> seed -> value
    means: dict[str, float]
    stds: dict[str, float | None]


def summarize(outcome, metrics: list[str], split: str = "test") -> Summary:
    """Per-seed values, means and stds of ``split``'s metrics over the successful seeds."""
    per_seed = {m: {row["seed"]: row[f"{split}_{m}"] for row in outcome.ok_rows if row.get(f"{split}_{m}") is not None}
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
    return significance.format_p(p)


def _settings(info: ReportInfo, outcomes) -> str:
    config = next((o.config for o in outcomes if o.config), None)
    if config is None:
        return ""
    keys = list(dict.fromkeys([*info.shared_keys, *PROTOCOL_KEYS]))
    return ", ".join(f"`{k}={config[k]}`" for k in keys if k in config and k not in NON_RESULT_KEYS)


def converged(outcome) -> bool:
    """False when a run of the entry trained up to its epoch cap instead of stopping early."""
    cap = (outcome.config or {}).get("epochs")
    for row in outcome.ok_rows:
        row_cap = row.get("epoch_cap") or cap
        if row.get("epochs") is not None and row_cap is not None and row["epochs"] >= row_cap:
            return False
    return True


def per_user_runs(outcome, per_user, split: str = "test") -> dict[int, dict] | None:
    """seed -> the run's per-user arrays, when every successful run of the entry has them."""
    if per_user is None or not outcome.ok_rows:
        return None
    runs = {}
    for row in outcome.ok_rows:
        stored = per_user(row)
        if stored is None or split not in stored:
            return None
        runs[row["seed"]] = stored[split]
    return runs


def build_table(outcomes, info: ReportInfo, per_user=None) -> str:
    """The table's markdown; ``per_user(row)`` gives a run's stored per-user metrics (or None)."""
    return build_report(outcomes, info, per_user)[0]


def build_report(outcomes, info: ReportInfo, per_user=None) -> tuple[str, dict]:
    """The table's markdown and its numbers as plain data (``summary.json``: what the
    cross-dataset summary reads)."""
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
            status = f"failed: {o.error}" if o.error else "no results yet"  # --table_only of a grid still running
            rows.append([o.label, status, *[""] * (max(len(metrics), 1) - 1), done])
    ref = summaries.get(info.reference)
    others = {label: s for label, s in summaries.items() if label != info.reference}
    runs = {o.label: per_user_runs(o, per_user) for o in outcomes if o.label in summaries}
    unconverged = {o.label for o in outcomes if o.label in summaries and not converged(o)}
    comparison, verdicts = [], None
    if ref is not None and others:
        best_other = {m: max(others, key=lambda label: others[label].means[m]) for m in metrics}
        rows.append([f"Improvement of {info.reference} over the best {info.others}",
                     *(f"{_percent(stats.relative_improvement(ref.means[m], others[best_other[m]].means[m]))} "
                       f"(vs {best_other[m]})" for m in metrics), ""])
        comparison, verdicts = _comparison(info, metrics, ref, others, runs, unconverged)
    checked = claims.check_all(list(summaries), {m: {label: s.means[m] for label, s in summaries.items()}
                                                 for m in metrics}, runs, unconverged, metrics)
    if not any(c["pairs"] for by_claim in checked.values() for c in by_claim):
        checked = None  # no claim's models in this grid (an ablation)
    finished = sum(len(o.ok_rows) for o in outcomes)
    state = ([f"**State: partial.** {finished} of {info.planned_runs} runs have results; the grid goes on with "
              "the command above, and the table is written again from every finished run.", ""]
             if info.planned_runs is not None and finished < info.planned_runs else [])
    lines = [
        f"# {info.title}", "",
        f"Command: `{info.command}`", "",
        *state,
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
    if checked is not None:
        lines += _claims_section(checked, _chart_metrics(metrics))
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
    data = {
        "title": info.title, "command": info.command, "seeds": info.seeds, "reference": info.reference,
        "entries": [{"label": o.label, "seeds": len(o.ok_rows), "converged": converged(o),
                     "means": {m: None if math.isnan(v) else v for m, v in summaries[o.label].means.items()}
                     if o.label in summaries else {},
                     "stds": summaries[o.label].stds if o.label in summaries else {},
                     "valid_means": {m: v for m, v in summarize(o, metrics, "valid").means.items() if not math.isnan(v)},
                     "error": o.error} for o in outcomes],
        "verdicts": verdicts,  # metric -> better / worse / no difference / not counted -> labels; None untested
        "claims": checked,     # metric -> the paper's claims checked (tables/claims.py); None without their models
    }
    return "\n".join(lines), data


def _comparison(info: ReportInfo, metrics, ref: Summary, others: dict[str, Summary], runs: dict[str, dict | None],
                unconverged: set[str]) -> list[str]:
    """Per metric: each other entry against the reference, per user (Holm-corrected across the
    entries), with the seed-level t-test as a secondary column; then the verdict. ``runs``:
    label -> seed -> per-user arrays (None without them)."""
    name = info.reference
    ref_runs = runs[name]
    other_runs = {label: runs[label] for label in others}
    lines = ["", f"## {name} against each {info.others}", "",
             f"Per user: each test user's value averaged over an entry's seeds, {name} minus the {info.others}; "
             "the mean difference with its 95% bootstrap interval over users, and the two-sided p-value of a "
             "paired t-test over users (`scipy.stats.ttest_rel`). Seed-aware: a paired permutation test over "
             "(seed, user) pairs, seeds as strata. Both p-values are Holm-corrected across the "
             f"{len(others)} {info.others}s of the metric (`recbole_mdsrec/tables/significance.py`). Seed-level "
             "(secondary, uncorrected, n = seeds): the paired t-test over the per-seed test values. "
             "The verdict uses only the corrected per-user p-value (< 0.05)."]
    if ref_runs is None:
        lines += ["", f"**No per-user test:** {name}'s runs were recorded without per-user metrics (runs before "
                      "they were kept); the command above with `--rerun_without_per_user` trains them again for the "
                      "per-user columns. Only the seed-level test is shown."]
    missing = [label for label, runs in other_runs.items() if runs is None]
    if ref_runs is not None and missing:
        lines += ["", f"No per-user metrics stored for {', '.join(missing)}: those rows have the seed-level test only "
                      "(the command above with `--rerun_without_per_user` trains them again)."]
    verdicts: dict[str, dict[str, list[str]]] = {}
    for m in metrics:
        results = {label: significance.compare(ref_runs, runs, m) if ref_runs is not None and runs is not None else None
                   for label, runs in other_runs.items()}
        p_user = significance.holm({label: r.p_user if r else None for label, r in results.items()})
        p_perm = significance.holm({label: r.p_permutation if r else None for label, r in results.items()})
        rows, verdicts[m] = [], {"better": [], "worse": [], "no difference": [], "not counted": []}
        for label, other in others.items():
            result = results[label]
            p_seed, pairs = stats.paired_ttest(ref.per_seed[m], other.per_seed[m])
            said = significance.verdict(result, p_user[label]) if result else "not tested"
            if said == "better" and label in unconverged:
                verdicts[m]["not counted"].append(label)
            elif said in verdicts[m]:
                verdicts[m][said].append(label)
            shown = label + (" (not converged)" if label in unconverged else "")
            if result is None:
                rows.append([shown, _percent(stats.relative_improvement(ref.means[m], other.means[m])), "n/a", "n/a",
                             "n/a", _p(p_seed, pairs), said])
                continue
            rows.append([shown, _percent(stats.relative_improvement(ref.means[m], other.means[m])),
                         f"{result.mean_difference:+.4f} [{result.ci[0]:+.4f}, {result.ci[1]:+.4f}]",
                         significance.format_p(p_user[label]), significance.format_p(p_perm[label]), _p(p_seed, pairs), said])
        users = next((r.users for r in results.values() if r), None)
        lines += ["", f"### {display_metric(m)}" + (f" ({users} users)" if users else ""), "",
                  render_table([info.others.capitalize(), "Relative difference", "Mean difference [95% CI]",
                                "Per-user p (Holm)", "Seed-aware p (Holm)", "Seed-level p (secondary)", "Verdict"], rows)]
    lines += ["", "## Verdict", ""]
    if ref_runs is None:
        lines.append(f"Not tested per user ({name}'s runs have no per-user metrics); no verdict is drawn from the "
                     "seed-level test alone.")
    else:
        for m in metrics:
            v = verdicts[m]
            parts = significance.verdict_phrases(v, "ahead of {labels}, not counted: they had not converged")
            head = (f"{name} is significantly better than every {info.others}" if len(v["better"]) == len(others)
                    else f"{name} is NOT significantly better than every {info.others}")
            lines.append(f"- {display_metric(m)}: {head}: " + "; ".join(parts) + ".")
    if name in unconverged:
        lines += ["", f"{name} itself reached the epoch cap in a run: its own numbers are before convergence."]
    return lines, (None if ref_runs is None else verdicts)


def _claims_section(checked: dict[str, list[dict]], metrics: list[str]) -> list[str]:
    """The paper's qualitative claims, held or not on this dataset (``tables/claims.py``)."""
    lines = ["", "## The paper's claims", "", claims.LEGEND]
    for m in metrics:
        lines += ["", f"{display_metric(m)}:", ""]
        lines += [claims.detail_line(c, c["statement"]) for c in checked[m]]
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
    from recbole_mdsrec.tables.store import RunStore

    folder = Path(folder)
    table = folder / "table.md"
    text, data = build_report(outcomes, info, per_user=RunStore(folder).per_user)
    write_text_atomically(table, text)
    write_text_atomically(folder / "summary.json", json.dumps(data, indent=1, allow_nan=False) + "\n")
    if any(o.ok_rows for o in outcomes):
        draw_chart(outcomes, folder / "chart.png", info.title)
    return table
