"""Per-user significance: Holm's correction, the paired tests and the interval against numbers
computed by hand, user alignment by token, and the verdict the table draws from them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from helpers import markdown_tables
from recbole_mdsrec.tables import significance
from recbole_mdsrec.tables.plan import Entry, Outcome
from recbole_mdsrec.tables.report import ReportInfo, build_table


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    adjusted = significance.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "untested": None})
    assert adjusted == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06, "d": 0.02, "untested": None})
    assert significance.holm({"a": 0.6, "b": 0.7}) == {"a": 1.0, "b": 1.0}  # capped at 1


def test_paired_tests_by_hand():
    reference, other = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 2.0, 1.0, 1.0])
    # differences 1, 0, 2, 3: mean 1.5, sd sqrt(5/3), t = 1.5 / (sd / 2) on 3 degrees of freedom
    t = 1.5 / (math.sqrt(5 / 3) / 2)
    assert significance.paired_t(reference, other) == pytest.approx(2 * stats.t.sf(t, 3))
    # all 16 sign flips of (1, 0, 2, 3): |sum| >= 6 only when 1, 2, 3 share a sign: 4 of 16
    assert significance.seed_permutation_p(reference[None], other[None]) == 0.25
    assert significance.paired_t(reference, reference + 1) is None  # equal differences: undefined
    assert significance.seed_permutation_p(reference[None], reference[None]) is None


def test_random_flips_agree_with_scipys_permutation_test():
    rng = np.random.default_rng(3)
    x, y = rng.random(40), rng.random(40) + 0.1
    ours = significance.seed_permutation_p(x[None], y[None])
    theirs = stats.permutation_test((x, y), lambda a, b, axis: (a - b).mean(axis=axis), permutation_type="samples",
                                    vectorized=True, n_resamples=99999, random_state=0).pvalue
    assert abs(ours - theirs) < 0.005  # Monte Carlo error of 9,999 flips at p ~ 0.016


def test_bootstrap_interval_covers_the_mean_and_is_seeded():
    difference = np.random.default_rng(0).normal(0.01, 0.1, 2000)
    low, high = significance.bootstrap_ci(difference)
    # about mean +- 1.96 * sd / sqrt(n) for a mean over 2,000 users
    half = 1.96 * difference.std(ddof=1) / math.sqrt(difference.size)
    assert low < difference.mean() < high and (high - low) / 2 == pytest.approx(half, rel=0.1)
    assert significance.bootstrap_ci(difference) == (low, high)
    assert significance.bootstrap_ci(np.full(5, 0.2)) == (pytest.approx(0.2), pytest.approx(0.2))


def per_user_runs(values_by_seed, users):
    return {seed: {"user": np.array(users), "ndcg@10": np.array(v, dtype=np.float32)} for seed, v in values_by_seed.items()}


def test_users_are_matched_by_token_not_by_position():
    users = [f"u{i}" for i in range(50)]
    rng = np.random.default_rng(1)
    ref = per_user_runs({s: rng.random(50) for s in (1, 2, 3)}, users)
    other = per_user_runs({s: rng.random(50) for s in (1, 2, 3)}, users)
    shuffled = {}
    for seed, run in other.items():
        order = rng.permutation(50)
        shuffled[seed] = {"user": run["user"][order], "ndcg@10": run["ndcg@10"][order]}
    assert significance.compare(ref, other, "ndcg@10") == significance.compare(ref, shuffled, "ndcg@10")
    # per-user means over the seeds, then the paired t-test over users
    x = np.mean([ref[s]["ndcg@10"] for s in (1, 2, 3)], axis=0, dtype=np.float64)
    y = np.mean([other[s]["ndcg@10"] for s in (1, 2, 3)], axis=0, dtype=np.float64)
    result = significance.compare(ref, other, "ndcg@10")
    assert result.users == 50 and result.seeds == 3
    assert result.mean_difference == pytest.approx(float((x - y).mean()))
    assert result.p_user == pytest.approx(float(stats.ttest_rel(x, y).pvalue))


def test_the_verdict_uses_corrected_per_user_p_and_ignores_unconverged_entries():
    users = [f"u{i}" for i in range(400)]
    rng = np.random.default_rng(2)
    base = rng.random(400)

    def entry(model, shift, epochs=10):
        runs = per_user_runs({s: np.clip(base + shift + rng.normal(0, 0.05, 400), 0, 1) for s in (1, 2, 3)}, users)
        rows = [{"model": model, "variant": "", "seed": s, "params": "{}", "status": "ok", "error": "",
                 "test_ndcg@10": float(runs[s]["ndcg@10"].mean()), "config_hash": f"{model}-{s}",
                 "epochs": epochs, "epoch_cap": 200} for s in (1, 2, 3)]
        return Outcome(Entry(model), rows=rows, winner={}, config={"valid_metric": "NDCG@10", "epochs": 200}), runs

    outcomes, stored = zip(*[entry("MDSRec", 0.05), entry("SASRec", 0.0), entry("FDSA", 0.049),
                             entry("UniSRec", 0.0, epochs=200)])
    by_hash = {row["config_hash"]: runs[row["seed"]] for o, runs in zip(outcomes, stored) for row in o.rows}
    table = build_table(list(outcomes), ReportInfo("t", "cmd", [1, 2, 3], 1, reference="MDSRec"),
                        per_user=lambda row: {"test": by_hash[row["config_hash"]]})
    ndcg = markdown_tables(table)[1]
    assert ndcg[0] == ["Baseline", "Relative difference", "Mean difference [95% CI]", "Per-user p (Holm)",
                       "Seed-aware p (Holm)", "Seed-level p (secondary)", "Verdict"]
    verdicts = {row[0]: row[-1] for row in ndcg[1:]}
    assert verdicts == {"SASRec": "better", "FDSA": "no difference", "UniSRec (not converged)": "better"}
    line = next(line for line in table.splitlines() if line.startswith("- NDCG@10:"))
    assert line == ("- NDCG@10: MDSRec is NOT significantly better than every baseline: better than SASRec; "
                    "no significant difference from FDSA; ahead of UniSRec, not counted: they had not converged.")


def test_summary_is_written_from_the_stored_comparisons(tmp_path, capsys):
    import json

    from recbole_mdsrec.cli import summary as summary_cli

    def comparison(command, verdicts, fdsa_converged=True, sasrec_seeds=3):
        entry = lambda label, mean, converged=True, seeds=3: {  # noqa: E731
            "label": label, "seeds": seeds, "converged": converged, "error": None,
            "means": {"ndcg@10": mean, "recall@10": 2 * mean},
            "stds": {"ndcg@10": 0.001 if seeds > 1 else None, "recall@10": 0.002 if seeds > 1 else None}}
        return {"title": "t", "command": command, "seeds": [1, 2, 3], "reference": "MDSRec", "verdicts": verdicts,
                "entries": [entry("SASRec", 0.05, seeds=sasrec_seeds), entry("FDSA", 0.06, fdsa_converged),
                            entry("MDSRec", 0.07)]}

    told = {m: {"better": ["SASRec"], "worse": [], "no difference": [], "not counted": ["FDSA"]}
            for m in ("ndcg@10", "recall@10")}
    (tmp_path / "hm").mkdir()
    (tmp_path / "hm" / "summary.json").write_text(json.dumps(comparison("python run.py --dataset=hm", told, False)))
    (tmp_path / "ml-100k-mm").mkdir()
    (tmp_path / "ml-100k-mm" / "summary.json").write_text(json.dumps(comparison("python run.py", None,
                                                                                sasrec_seeds=1)))
    assert summary_cli.main(["--results_dir", str(tmp_path)]) == 0
    text = (tmp_path / "summary.md").read_text()
    ndcg = markdown_tables(text)[0]
    assert ndcg[0] == ["Model", "hm", "ml-100k-mm"]
    assert ndcg[1] == ["SASRec", "0.0500 ± 0.0010", "0.0500 (1/3 seeds)"]
    assert ndcg[2] == ["FDSA", "0.0600 ± 0.0010 †", "0.0600 ± 0.0010"]
    assert "- hm: `python run.py --dataset=hm`, seeds 1, 2, 3; complete" in text
    assert "- ml-100k-mm: `python run.py`, seeds 1, 2, 3; partial: 7 of 9 runs" in text
    assert "- hm: MDSRec: better than SASRec; ahead of FDSA (not converged, not counted)." in text
    assert "- ml-100k-mm: MDSRec not tested per user (its runs have no per-user metrics)." in text
    assert summary_cli.main(["--results_dir", str(tmp_path / "empty")]) == 2
    assert "No grid in" in capsys.readouterr().err


def test_summary_tells_a_reference_without_runs_from_one_without_per_user_metrics(tmp_path):
    import json

    from recbole_mdsrec.cli import summary as summary_cli

    finished = {"label": "SASRec", "seeds": 1, "converged": True, "error": None,
                "means": {"ndcg@10": 0.05, "recall@10": 0.1}, "stds": {"ndcg@10": None, "recall@10": None}}
    not_started = {"label": "MDSRec", "seeds": 0, "converged": True, "error": None, "means": {}, "stds": {}}
    (tmp_path / "microlens-50k").mkdir()
    (tmp_path / "microlens-50k" / "summary.json").write_text(json.dumps(
        {"title": "t", "command": "python run.py", "seeds": [1, 2, 3], "reference": "MDSRec", "verdicts": None,
         "entries": [finished, not_started]}))
    assert summary_cli.main(["--results_dir", str(tmp_path)]) == 0
    text = (tmp_path / "summary.md").read_text()
    assert text.count("- microlens-50k: MDSRec has no finished runs yet.") == 2
    assert "no per-user metrics" not in text


def test_screening_ranks_presets_on_validation_only(tmp_path):
    import json

    from recbole_mdsrec.cli import summary as summary_cli

    def ablation(valid, test):
        return {"title": "t", "command": "python run.py --model=MDSRec --variant=all --seeds=1", "seeds": [1],
                "reference": "MDSRec-full", "verdicts": None,
                "entries": [{"label": label, "seeds": 1, "converged": True, "error": None, "stds": {},
                             "means": {"ndcg@10": test[label]}, "valid_means": {"ndcg@10": v}}
                            for label, v in valid.items()]}

    reversed_test = {"MDSRec-full": 0.9, "MDSRec-authors": 0.0, "MDSRec-wo_rgc": 0.5}
    for dataset, valid in {"hm": {"MDSRec-full": 0.20, "MDSRec-authors": 0.25, "MDSRec-wo_rgc": 0.10},
                           "ml-100k-mm": {"MDSRec-full": 0.06, "MDSRec-authors": 0.07}}.items():
        (tmp_path / dataset / "ablation").mkdir(parents=True)
        (tmp_path / dataset / "ablation" / "summary.json").write_text(json.dumps(ablation(valid, reversed_test)))
    assert summary_cli.main(["--results_dir", str(tmp_path), "--screening"]) == 0
    readings, rows = markdown_tables((tmp_path / "screening.md").read_text())
    assert readings[1:] == [["MDSRec-authors", "0.2500 (1)", "0.0700 (1)", "1.00 (2 of 2)"],
                            ["MDSRec-full", "0.2000 (2)", "0.0600 (2)", "2.00 (2 of 2)"]]
    assert rows[0] == ["Entry", "hm", "ml-100k-mm", "Mean rank (datasets)"]
    assert rows[1] == ["MDSRec-authors", "0.2500 (1)", "0.0700 (1)", "1.00 (2 of 2)"]  # the test metric is not read
    assert rows[2] == ["MDSRec-full", "0.2000 (2)", "0.0600 (2)", "2.00 (2 of 2)"]
    assert rows[3] == ["MDSRec-wo_rgc", "0.1000 (3)", "—", "3.00 (1 of 2)"]
