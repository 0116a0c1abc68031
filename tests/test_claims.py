"""The paper's claims checked on a comparison: which pairs each claim tests, the per-user test
and Holm's correction within a claim against scipy on the stored hm runs, statuses, and the
sections of table.md and summary.md that show them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from helpers import markdown_tables
from recbole_mdsrec.tables import claims
from recbole_mdsrec.tables.claims import Claim
from recbole_mdsrec.tables.plan import Entry, Outcome
from recbole_mdsrec.tables.report import ReportInfo, build_report
from recbole_mdsrec.tables.store import RunStore

HM_RESULTS = Path(__file__).resolve().parents[1] / "results" / "hm"


def test_each_claim_pairs_the_entries_it_names():
    present = ["SASRec", "GRU4Rec", "BERT4Rec", "GRU4RecF", "FDSA", "MDSRec", "SGP4SR"]
    means = {"SASRec": 0.20, "GRU4Rec": 0.05, "BERT4Rec": 0.21, "GRU4RecF": 0.1, "FDSA": 0.3, "MDSRec": 0.25,
             "SGP4SR": 0.4}
    features, modalities, mdsrec = claims.PAPER_CLAIMS
    assert features.pairs(present, means) == [("GRU4RecF", "GRU4Rec")]  # SASRecF is missing: no SASRec pair
    # every modality-based baseline present against the strongest ID-based model (BERT4Rec here)
    assert modalities.pairs(present, means) == [("GRU4RecF", "BERT4Rec"), ("FDSA", "BERT4Rec")]
    # the paper's baselines only: SGP4SR is in no claim
    assert mdsrec.pairs(present, means) == [("MDSRec", o) for o in ("SASRec", "GRU4Rec", "BERT4Rec", "GRU4RecF", "FDSA")]
    assert Claim("k", "t", "s", ("A",)).pairs(["A", "B", "C"], {}) == [("A", "B"), ("A", "C")]  # no opponents: all others


def stored_runs(store: RunStore, model: str) -> dict[int, dict]:
    """seed -> the test per-user arrays of ``model``'s runs under the grid's epoch cap."""
    rows = [row for row in store.rows.values() if row["model"] == model and row["epoch_cap"] == 200]
    assert sorted(row["seed"] for row in rows) == [1, 2, 3]
    return {row["seed"]: store.per_user(row)["test"] for row in rows}


def seed_means(runs: dict[int, dict], metric: str, users: list[str]) -> np.ndarray:
    values = []
    for seed in sorted(runs):
        position = {token: i for i, token in enumerate(runs[seed]["user"])}
        values.append([runs[seed][metric][position[u]] for u in users])
    return np.mean(np.asarray(values, dtype=np.float64), axis=0)


def test_a_claim_on_the_stored_hm_runs_equals_scipys_tests_holm_corrected():
    store = RunStore(HM_RESULTS)
    labels = ["GRU4Rec", "SASRec", "GRU4RecF", "SASRecF"]
    runs = {label: stored_runs(store, label) for label in labels}
    users = sorted(set(runs["SASRec"][1]["user"].tolist()))
    raw = {}
    for winner, opponent in (("GRU4RecF", "GRU4Rec"), ("SASRecF", "SASRec")):
        x, y = seed_means(runs[winner], "ndcg@10", users), seed_means(runs[opponent], "ndcg@10", users)
        raw[winner] = (float(stats.ttest_rel(x, y).pvalue), float((x - y).mean()))
    checked = claims.check(claims.PAPER_CLAIMS[0], labels, {}, runs, set(), "ndcg@10")
    # Holm over two: the smaller p times 2, the larger times 1 but never below the first
    low, high = sorted(p for p, _ in raw.values())
    expected = {w: min(1.0, 2 * low) if p == low else max(min(1.0, 2 * low), high) for w, (p, _) in raw.items()}
    assert [(p["winner"], p["opponent"]) for p in checked["pairs"]] == [("GRU4RecF", "GRU4Rec"), ("SASRecF", "SASRec")]
    for pair in checked["pairs"]:
        assert pair["p"] == pytest.approx(expected[pair["winner"]], rel=1e-9, abs=1e-300)
        assert pair["mean_difference"] == pytest.approx(raw[pair["winner"]][1])
        significant = pair["p"] < 0.05
        direction = "better" if pair["mean_difference"] > 0 else "worse"
        assert pair["outcome"] == (direction if significant else "no difference")
    won = sum(p["outcome"] == "better" for p in checked["pairs"])
    assert checked["status"] == {2: "held", 1: "partly held", 0: "not held"}[won]
    assert checked["missing"] == []


def synthetic(model: str, shift: float, rng, users: list[str], epochs: int = 10):
    base = np.linspace(0.0, 0.5, len(users))
    runs = {s: {"user": np.array(users), "ndcg@10": np.clip(base + shift + rng.normal(0, 0.05, len(users)), 0, 1)}
            for s in (1, 2, 3)}
    rows = [{"model": model, "variant": "", "seed": s, "params": "{}", "status": "ok", "error": "",
             "test_ndcg@10": float(runs[s]["ndcg@10"].mean()), "valid_ndcg@10": 0.1, "config_hash": f"{model}-{s}",
             "epochs": epochs, "epoch_cap": 200} for s in (1, 2, 3)]
    return Outcome(Entry(model), rows=rows, winner={}, config={"valid_metric": "NDCG@10", "epochs": 200}), runs


def test_table_and_summary_say_which_claims_hold(tmp_path):
    from recbole_mdsrec.cli import summary as summary_cli

    rng, users = np.random.default_rng(5), [f"u{i}" for i in range(300)]
    made = [synthetic("SASRec", 0.02, rng, users), synthetic("SASRecF", 0.1, rng, users),
            synthetic("GRU4Rec", 0.0, rng, users), synthetic("GRU4RecF", 0.0, rng, users, epochs=200),
            synthetic("MDSRec", 0.1, rng, users, epochs=200)]
    outcomes, by_hash = [o for o, _ in made], {f"{o.label}-{s}": runs[s] for o, runs in made for s in runs}
    table, data = build_report(outcomes, ReportInfo("t", "cmd", [1, 2, 3], 1, reference="MDSRec"),
                               per_user=lambda row: {"test": by_hash[row["config_hash"]]})
    features, modalities, mdsrec = data["claims"]["ndcg@10"]
    assert [p["outcome"] for p in features["pairs"]] == ["no difference", "better"]
    assert features["status"] == "partly held" and features["missing"] == []
    # against SASRec, the strongest ID-based model: SASRecF is far ahead, GRU4RecF behind
    assert [(p["winner"], p["opponent"], p["outcome"]) for p in modalities["pairs"]] == [
        ("GRU4RecF", "SASRec", "worse"), ("SASRecF", "SASRec", "better")]
    assert modalities["missing"] == ["FDSA", "UniSRec", "MISSRec", "MMMLP", "BERT4Rec"]
    # MDSRec is far ahead of GRU4RecF too, but that opponent ran to the epoch cap: not counted
    assert {p["opponent"]: p["outcome"] for p in mdsrec["pairs"]} == {
        "SASRec": "better", "GRU4Rec": "better", "GRU4RecF": "not counted", "SASRecF": "no difference"}
    assert mdsrec["status"] == "partly held"
    lines = table.splitlines()
    section = lines[lines.index("## The paper's claims"):]
    claim_line = next(line for line in section if line.startswith("- Feature-aware"))
    assert claim_line.startswith("- Feature-aware beats ID-only (GRU4RecF > GRU4Rec, SASRecF > SASRec): "
                                 "partly held (1 of 2): GRU4RecF ≈ GRU4Rec (p=")
    assert "SASRecF > SASRec (p<0.0001)." in claim_line

    (tmp_path / "hm").mkdir()
    (tmp_path / "hm" / "summary.json").write_text(json.dumps(data))
    assert summary_cli.main(["--results_dir", str(tmp_path)]) == 0
    text = (tmp_path / "summary.md").read_text()
    ndcg_claims = markdown_tables(text)[2]  # after the NDCG@10 and Recall@10 tables
    assert ndcg_claims[0] == ["Claim", "hm"]
    assert ndcg_claims[1:] == [
        [features["statement"], "partly held (1 of 2)"],
        [modalities["statement"], "partly held (1 of 2; without FDSA, UniSRec, MISSRec, MMMLP, BERT4Rec)"],
        [mdsrec["statement"], "partly held (2 of 4; without BERT4Rec, FDSA, UniSRec, MISSRec, MMMLP)"]]
    assert "- hm, MDSRec beats every baseline: partly held (2 of 4; without" in text
    assert "MDSRec > GRU4RecF (p<0.0001, GRU4RecF not converged, not counted)" in text
