"""Side-by-side tables: the numbers of the table, resuming, failures, tuning, the command
line, and one small real grid."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math

import numpy as np
import pytest
import torch
import yaml

from helpers import MM_SLICE, interrupted_after_first_epoch, markdown_tables
from recbole_mdsrec import properties
from recbole_mdsrec.cli import grid as grid_cli
from recbole_mdsrec.cli import run as cli
from recbole_mdsrec.schema import config_hash
from recbole_mdsrec.tables import grid as grid_module
from recbole_mdsrec.tables import stats
from recbole_mdsrec.tables.grid import Grid
from recbole_mdsrec.tables.plan import Entry, GridSpec, Outcome, resolve_run
from recbole_mdsrec.tables.report import ReportInfo, build_table, write_report
from recbole_mdsrec.tables.store import RunStore
from recbole_mdsrec.training import runner
from recbole_mdsrec.training.runner import RunResult
from recbole_mdsrec.variants import variant_overrides, variants_of

GRID_YAML = str(properties.path("grid.yaml"))

DATASET = "ml-100k-mm"  # configs are resolved, never loaded, except in the end-to-end test


def run_row(model, seed, recall, ndcg, status="ok", error=""):
    return {"model": model, "variant": "", "seed": seed, "params": "{}", "status": status, "error": error,
            "test_recall@10": recall, "test_ndcg@10": ndcg, "valid_ndcg@10": ndcg,
            "config_hash": f"{model}-{seed}"}


def outcome(model, recalls, ndcgs):
    rows = [run_row(model, seed, r, n) for seed, r, n in zip((1, 2, 3), recalls, ndcgs)]
    return Outcome(Entry(model), rows=rows, winner={}, config={"valid_metric": "NDCG@10", "epochs": 30})


@pytest.fixture
def three_models():
    """MDSRec wins NDCG@10 but not Recall@10; UniSRec failed at every seed."""
    failed = Outcome(Entry("UniSRec"), rows=[run_row("UniSRec", s, None, None, "failed", "RuntimeError: boom")
                                             for s in (1, 2, 3)], winner={}, error="RuntimeError: boom")
    return [
        outcome("SASRec", [0.53, 0.55, 0.57], [0.28, 0.29, 0.33]),
        outcome("MDSRec", [0.50, 0.52, 0.54], [0.30, 0.32, 0.34]),
        outcome("GRU4Rec", [0.40, 0.41, 0.42], [0.20, 0.21, 0.22]),
        failed,
    ]


def test_stats_by_hand():
    # sample std (ddof=1): deviations -0.02, -0.01, 0.03 -> sqrt((4 + 1 + 9)e-4 / 2)
    mean, std = stats.mean_std([0.28, 0.29, 0.33])
    assert mean == pytest.approx(0.30) and std == pytest.approx(math.sqrt(7e-4))
    assert stats.mean_std([0.5]) == (0.5, None)
    assert stats.relative_improvement(0.32, 0.30) == pytest.approx(100 * 0.02 / 0.30)
    assert stats.relative_improvement(0.1, 0.0) is None
    # differences 0.02, 0.03, 0.01: t = 0.02 / (0.01 / sqrt 3) = 2 sqrt 3 with 2 degrees of
    # freedom, where the two-sided p is 1 - t / sqrt(t^2 + 2) = 1 - sqrt(6/7)
    p, pairs = stats.paired_ttest({1: 0.30, 2: 0.32, 3: 0.34}, {3: 0.33, 1: 0.28, 2: 0.29, 4: 0.9})
    assert pairs == 3 and p == pytest.approx(1 - math.sqrt(6 / 7))
    assert stats.paired_ttest({1: 0.5, 2: 0.6}, {1: 0.4, 2: 0.5}) == (None, 2)  # equal differences
    assert stats.paired_ttest({1: 0.5}, {1: 0.4}) == (None, 1)
    assert stats.rank_marks({"a": 0.3, "b": 0.5, "c": 0.4, "d": 0.5}) == {"a": "", "b": "best", "c": "second", "d": "best"}


def test_table_marks_compares_and_says_where_mdsrec_loses(three_models):
    table = build_table(three_models, ReportInfo("Comparison on x", "python run.py --model=A,B --seeds=3",
                                                 [1, 2, 3], 1, ["epochs"], reference="MDSRec"))
    lines = table.splitlines()
    assert "Command: `python run.py --model=A,B --seeds=3`" in lines
    assert "`epochs=30`" in table and "ddof=1" in table
    main = markdown_tables(table)[0]
    assert main == [
        ["Model", "Recall@10", "NDCG@10", "Seeds"],
        ["SASRec", "**0.5500 ± 0.0200**", "<u>0.3000 ± 0.0265</u>", "3/3"],
        ["MDSRec", "<u>0.5200 ± 0.0200</u>", "**0.3200 ± 0.0200**", "3/3"],
        ["GRU4Rec", "0.4100 ± 0.0100", "0.2100 ± 0.0100", "3/3"],
        ["UniSRec", "failed: RuntimeError: boom", "", "0/3"],
        # (0.52 - 0.55) / 0.55 and (0.32 - 0.30) / 0.30, each over that metric's best baseline
        ["Improvement of MDSRec over the best baseline", "-5.45% (vs SASRec)", "+6.67% (vs SASRec)", ""],
    ]
    # no per-user metrics here: the seed-level t-test only, and no verdict drawn from it.
    # against SASRec, Recall@10 differs by -0.03 at every seed: no t-test; NDCG@10 as in test_stats_by_hand.
    # against GRU4Rec: differences 0.10, 0.11, 0.12 -> t = 11 sqrt 3 -> p = 1 - sqrt(363/365) = 0.0027
    recall, ndcg = markdown_tables(table)[1:3]
    assert recall[1:] == [["SASRec", "-5.45%", "n/a", "n/a", "n/a", "p n/a (equal differences)", "not tested"],
                          ["GRU4Rec", "+26.83%", "n/a", "n/a", "n/a", "p=0.0027", "not tested"]]
    assert ndcg[1:] == [["SASRec", "+6.67%", "n/a", "n/a", "n/a", "p=0.0742", "not tested"],
                        ["GRU4Rec", "+52.38%", "n/a", "n/a", "n/a", "p=0.0027", "not tested"]]
    assert any(line.startswith("**No per-user test:** MDSRec's runs were recorded without per-user metrics") for line in lines)
    assert any(line.startswith("Not tested per user") for line in lines)
    assert "- UniSRec, seed 1 (defaults): RuntimeError: boom" in lines


def test_table_says_which_entries_reached_the_epoch_cap(three_models):
    for o, epochs in zip(three_models, ([30, 12, 30], [7, 9, 11], [30, 30, 30])):
        for row, e in zip(o.rows, epochs):
            row.update(epochs=e, epoch_seconds=2.0 * e)
    table = build_table(three_models, ReportInfo("t", "cmd", [1, 2, 3], 1, reference="MDSRec"))
    lines = table.splitlines()
    length = markdown_tables(table)[-1]
    assert length[0] == ["Model", "Epochs", "Reached the cap", "Seconds per epoch (mean)"]
    assert length[1:] == [["SASRec", "30, 12, 30", "2/3 (cap 30)", "48.0"], ["MDSRec", "7, 9, 11", "0/3 (cap 30)", "18.0"],
                          ["GRU4Rec", "30, 30, 30", "3/3 (cap 30)", "60.0"]]  # UniSRec has no run
    assert any(line.startswith("**2 of 3 entries reached the epoch cap** in at least one run (SASRec, GRU4Rec)")
               for line in lines)


def fake_result(model, config_dict, test=0.2, valid=None):
    values = {"recall@10": test * 1.5, "ndcg@10": test}
    valid_values = {"recall@10": (valid or test) * 1.5, "ndcg@10": valid or test}
    return RunResult(model, DATASET, values["ndcg@10"], valid_values, values, 2, 1.0, [0.4, 0.6], [1.0, 0.9],
                     0.1, 1234)


class FakeRuns:
    """Stands in for runner.run; records each call and can raise on the n-th."""

    def __init__(self, raise_on=None, error=KeyboardInterrupt, failing_model=None):
        self.calls, self.resumed = [], []
        self.raise_on, self.error, self.failing_model = raise_on, error, failing_model

    def __call__(self, request):
        model, seed = request.model, request.overrides["seed"]
        self.calls.append((model, seed, dict(request.config_dict)))
        self.resumed.append(request.resume)
        if len(self.calls) == self.raise_on:
            raise self.error()
        if model == self.failing_model:
            raise RuntimeError("out of memory\nsecond line")
        return fake_result(model, request.config_dict, test=0.1 + 0.01 * seed + 0.1 * (model == "MDSRec"))


def spec(tmp_path, models=("SASRec", "GRU4Rec"), seeds=(1, 2), budget=1, **kw):
    return GridSpec([Entry(m) for m in models], DATASET, list(seeds), tmp_path / "results", budget,
                    [GRID_YAML], {"gpu_id": "", **kw})


def read_runs(tmp_path):
    with (tmp_path / "results" / "runs.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_interrupted_grid_resumes_with_only_the_rest(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        Grid(spec(tmp_path), run_fn=FakeRuns(raise_on=2)).run()
    assert [(r["model"], r["seed"], r["status"]) for r in read_runs(tmp_path)] == [("SASRec", "1", "ok")]
    first = read_runs(tmp_path)[0]

    again = FakeRuns()
    outcomes = Grid(spec(tmp_path), run_fn=again).run()
    assert [(model, seed) for model, seed, _ in again.calls] == [("SASRec", 2), ("GRU4Rec", 1), ("GRU4Rec", 2)]
    assert [len(o.ok_rows) for o in outcomes] == [2, 2]
    rows = read_runs(tmp_path)
    assert len(rows) == 4 and rows[0] == first  # the finished run is kept as it was
    assert not list((tmp_path / "results").glob(".*tmp"))  # no temporary file left behind

    idle = FakeRuns()
    Grid(spec(tmp_path), run_fn=idle).run()
    assert idle.calls == []


def test_kill_stops_a_grid_as_ctrl_c_does_and_the_handlers_come_back(tmp_path, monkeypatch):
    import os
    import signal

    monkeypatch.chdir(tmp_path)

    class KilledOnSecondRun(FakeRuns):
        def __call__(self, request):
            if len(self.calls) == 1:
                os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` from another shell
            return super().__call__(request)

    runs = KilledOnSecondRun()
    monkeypatch.setattr(grid_module, "run_request", runs)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert cli.main(["--model=SASRec,GRU4Rec", f"--dataset={DATASET}", "--gpu_id="]) == 130
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    assert [row["model"] for row in RunStore(tmp_path / "results" / DATASET).rows.values()] == ["SASRec"]
    assert len(runs.calls) == 1  # the killed run never got to train


def test_two_grids_sharing_a_folder_keep_each_others_runs(tmp_path):
    # Seen: two grids on one dataset each rewrote runs.csv from their own rows, and one's run vanished.
    folder = tmp_path / "results"
    first, second = RunStore(folder), RunStore(folder)
    first.record(run_row("SASRec", 1, 0.5, 0.3), {"model": "SASRec"})
    second.record(run_row("MDSRec", 1, 0.6, 0.4), {"model": "MDSRec"})
    assert sorted(row["model"] for row in read_runs(tmp_path)) == ["MDSRec", "SASRec"]
    assert first.finished("MDSRec-1") is not None  # a run the other grid finished is skipped, not repeated
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*.tmp"))


def test_per_user_metrics_are_stored_compressed_and_plain_files_still_read(tmp_path):
    import gzip

    store = RunStore(tmp_path / "results")
    row = run_row("SASRec", 1, 0.5, 0.3)
    values = np.array([0.0, 1 / 3, 0.630929753571], dtype=np.float32)
    per_user = {"valid": {"user": np.array(["7", "3", "12"]), "ndcg@10": values},
                "test": {"user": np.array(["3", "12"]), "ndcg@10": values[1:]}}
    store.record(row, {"model": "SASRec"}, per_user)
    path = store.per_user_path("SASRec", "", row["config_hash"])
    assert path.name.endswith(".csv.gz")
    first = path.read_bytes()
    store.record(row, {"model": "SASRec"}, per_user)
    assert path.read_bytes() == first  # no timestamp inside: the same run writes the same bytes

    def read_back():
        stored = store.per_user(row)
        assert stored["valid"]["user"].tolist() == ["7", "3", "12"] and stored["test"]["user"].tolist() == ["3", "12"]
        assert np.array_equal(stored["valid"]["ndcg@10"], values)  # float32 round-trips exactly
        assert np.array_equal(stored["test"]["ndcg@10"], values[1:])  # the user a split did not score is absent

    read_back()
    path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))  # as a run kept before the compression
    path.unlink()
    read_back()


def test_ablation_reuses_the_comparisons_mdsrec_runs(tmp_path):
    comparison = tmp_path / "results"
    Grid(spec(tmp_path, models=("MDSRec",)), run_fn=FakeRuns()).run()
    ablation = GridSpec([Entry("MDSRec", "full"), Entry("MDSRec", "wo_rgc")], DATASET, [1, 2],
                        comparison / "ablation", 1, [GRID_YAML], {"gpu_id": ""},
                        reuse_dirs=[comparison])
    runs = FakeRuns()
    outcomes = Grid(ablation, run_fn=runs).run()
    # `full` is MDSRec as the comparison ran it (same config hash): only wo_rgc trains.
    assert [(model, seed, config["n_graph_layers"]) for model, seed, config in runs.calls] == \
        [("MDSRec", 1, 0), ("MDSRec", 2, 0)]
    full = outcomes[0].rows
    assert [row["variant"] for row in full] == ["full", "full"]
    assert [row["test_ndcg@10"] for row in full] == [float(row["test_ndcg@10"]) for row in read_runs(tmp_path)]
    with (comparison / "ablation" / "runs.csv").open() as handle:
        assert sorted(row["variant"] for row in csv.DictReader(handle)) == ["full", "full", "wo_rgc", "wo_rgc"]
    # ... and the other way round: the comparison finds nothing new to train.
    again = FakeRuns()
    Grid(GridSpec([Entry("MDSRec")], DATASET, [1, 2], comparison, 1, [GRID_YAML],
                  {"gpu_id": ""}, reuse_dirs=[comparison / "ablation"]), run_fn=again).run()
    assert again.calls == []


def test_a_run_that_stopped_early_under_a_lower_epoch_cap_counts_under_a_higher_one(tmp_path):
    # FakeRuns trains 2 epochs: under epochs=30 it stopped early, so epochs=200 trains the same run.
    first = Grid(spec(tmp_path, models=("SASRec",), seeds=(1,), epochs=30), run_fn=FakeRuns()).run()[0].rows[0]
    again = FakeRuns()
    reused = Grid(spec(tmp_path, models=("SASRec",), seeds=(1,), epochs=200), run_fn=again).run()[0].rows[0]
    assert again.calls == []
    assert reused["config_hash"] != first["config_hash"] and reused["test_ndcg@10"] == first["test_ndcg@10"]
    assert {row["config_hash"] for row in read_runs(tmp_path)} == {first["config_hash"], reused["config_hash"]}
    # A cap below the epochs it trained would have cut it: another run.
    shorter = FakeRuns()
    Grid(spec(tmp_path, models=("SASRec",), seeds=(1,), epochs=1), run_fn=shorter).run()
    assert len(shorter.calls) == 1


def test_a_run_that_reached_its_epoch_cap_is_not_reused_under_a_higher_one(tmp_path):
    Grid(spec(tmp_path, models=("SASRec",), seeds=(1,), epochs=2), run_fn=FakeRuns()).run()  # 2 of 2 epochs
    again = FakeRuns()
    Grid(spec(tmp_path, models=("SASRec",), seeds=(1,), epochs=200), run_fn=again).run()
    assert [(model, seed) for model, seed, _ in again.calls] == [("SASRec", 1)]


class PerUserRuns(FakeRuns):
    """FakeRuns whose runs also give per-user metrics, as runs do since they are kept."""

    def __call__(self, request):
        result = super().__call__(request)
        scores = {"user": np.array(["1", "2"]), "ndcg@10": np.array([0.0, 1.0], dtype=np.float32)}
        return dataclasses.replace(result, per_user={"valid": scores, "test": scores})


def test_runs_recorded_without_per_user_metrics_train_again_only_when_asked(tmp_path):
    Grid(spec(tmp_path), run_fn=FakeRuns()).run()  # 4 runs, none with per-user metrics
    kept = FakeRuns()
    Grid(spec(tmp_path), run_fn=kept).run()
    assert kept.calls == []
    again = PerUserRuns()
    Grid(dataclasses.replace(spec(tmp_path), rerun_without_per_user=True), run_fn=again).run()
    assert [(model, seed) for model, seed, _ in again.calls] == \
        [("SASRec", 1), ("SASRec", 2), ("GRU4Rec", 1), ("GRU4Rec", 2)]
    rows = read_runs(tmp_path)
    assert len(rows) == 4 and all(RunStore(tmp_path / "results").has_per_user(row) for row in rows)
    done = PerUserRuns()
    Grid(dataclasses.replace(spec(tmp_path), rerun_without_per_user=True), run_fn=done).run()
    assert done.calls == []


def test_of_two_stopped_early_twins_the_one_with_per_user_metrics_is_reused(tmp_path):
    # The same run under caps 30 (recorded before per-user metrics were kept) and 50 (with them):
    # under cap 200 either is this run, and the one with per-user metrics gives the per-user tests.
    Grid(spec(tmp_path, models=("SASRec",), seeds=(1,), epochs=30), run_fn=FakeRuns()).run()
    Grid(dataclasses.replace(spec(tmp_path, models=("SASRec",), seeds=(1,), epochs=50),
                             rerun_without_per_user=True), run_fn=PerUserRuns()).run()
    store = RunStore(tmp_path / "results")
    assert [store.has_per_user(row) for row in read_runs(tmp_path)] == [False, True]  # cap 30, cap 50
    again = FakeRuns()
    reused = Grid(dataclasses.replace(spec(tmp_path, models=("SASRec",), seeds=(1,), epochs=200),
                                      rerun_without_per_user=True), run_fn=again).run()[0].rows[0]
    assert again.calls == [] and store.has_per_user(reused)


def test_failing_model_is_recorded_and_the_others_complete(tmp_path):
    runs = FakeRuns(failing_model="GRU4Rec")
    outcomes = Grid(spec(tmp_path, models=("GRU4Rec", "SASRec")), run_fn=runs).run()
    assert len(runs.calls) == 4
    gru, sas = outcomes
    assert gru.error == "RuntimeError: out of memory second line" and not gru.ok_rows
    assert len(sas.ok_rows) == 2
    statuses = {(r["model"], r["seed"]): (r["status"], r["error"]) for r in read_runs(tmp_path)}
    assert statuses[("GRU4Rec", "1")] == ("failed", "RuntimeError: out of memory second line")
    assert statuses[("SASRec", "2")] == ("ok", "")
    table = build_table(outcomes, ReportInfo("t", "cmd", [1, 2], 1))
    assert ["GRU4Rec", "failed: RuntimeError: out of memory second line", "", "0/2"] in markdown_tables(table)[0]
    alone = markdown_tables(build_table([gru], ReportInfo("t", "cmd", [1, 2], 1)))[0]
    assert alone == [["Model", "Result", "Seeds"], ["GRU4Rec", "failed: RuntimeError: out of memory second line", "0/2"]]

    retry = FakeRuns()  # failed runs are tried again, finished ones are not
    Grid(spec(tmp_path, models=("GRU4Rec", "SASRec")), run_fn=retry).run()
    assert [(m, s) for m, s, _ in retry.calls] == [("GRU4Rec", 1), ("GRU4Rec", 2)]


def prefers_small_learning_rate(request):
    """A stand-in run (module level: --jobs pickles it into its processes) where the smaller
    learning rate is better on validation and worse on test."""
    slow = request.config_dict.get("learning_rate") == 0.0005
    return fake_result(request.model, request.config_dict, test=0.1 if slow else 0.3, valid=0.3 if slow else 0.1)


@pytest.mark.parametrize("jobs", [1, 2])
def test_tuning_chooses_on_validation_with_the_same_budget_for_every_model(tmp_path, jobs):
    def run(request):
        calls.append((request.model, request.overrides["seed"], request.config_dict.get("learning_rate")))
        return prefers_small_learning_rate(request)

    calls = []
    models = ("SASRec", "GRU4Rec") if jobs == 1 else ("SASRec",)  # each process start costs seconds
    grid = spec(tmp_path, models=models, seeds=(1, 2, 3), budget=3)
    grid.jobs = jobs
    outcomes = Grid(grid, run_fn=run if jobs == 1 else prefers_small_learning_rate).run()
    for o in outcomes:
        assert len(o.tried) == 3 and o.space_size == 4
        assert o.winner["learning_rate"] == 0.0005
        assert [row["seed"] for row in o.rows] == [1, 2, 3]
    if jobs == 1:  # tuning at the first seed only; the winner's first-seed run is reused
        assert [(s, lr) for m, s, lr in calls if m == "SASRec"] == \
            [(1, None), (1, 0.001), (1, 0.0005), (2, 0.0005), (3, 0.0005)]
        assert len([c for c in calls if c[0] == "GRU4Rec"]) == 5
    else:  # the same runs, trained in other processes
        assert len(read_runs(tmp_path)) == 5
    tuned = markdown_tables(build_table(outcomes, ReportInfo("t", "cmd", [1, 2, 3], 3)))[-2]
    assert ["SASRec", "3 of 4", "learning_rate=0.0005, hidden_dropout_prob=0.5", "0.3000"] in tuned
    assert (["GRU4Rec", "3 of 4", "learning_rate=0.0005, dropout_prob=0.3", "0.3000"] in tuned) == ("GRU4Rec" in models)


def test_config_hash_ignores_paths_and_follows_results(tmp_path):
    grid = spec(tmp_path)
    base = resolve_run(grid, Entry("SASRec"), {}, seed=1)
    grid.overrides = {"gpu_id": "", "checkpoint_dir": str(tmp_path / "elsewhere"), "show_progress": False}
    assert resolve_run(grid, Entry("SASRec"), {}, seed=1).hash == base.hash
    assert resolve_run(grid, Entry("SASRec"), {}, seed=2).hash != base.hash
    assert resolve_run(grid, Entry("SASRec"), {"learning_rate": 0.0005}, seed=1).hash != base.hash
    assert resolve_run(grid, Entry("SASRec"), {"learning_rate": 0.001}, seed=1).hash == base.hash  # the default
    assert config_hash({"a": 1, "data_path": "x"}) == config_hash({"data_path": "y", "a": 1})
    # An option added later keeps earlier runs' hashes at its neutral value only.
    assert config_hash({"a": 1, "feature_normalization": "none"}) == config_hash({"a": 1})
    assert config_hash({"a": 1, "feature_normalization": "l2"}) != config_hash({"a": 1})


def test_command_line_grid_and_ablation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = FakeRuns()
    monkeypatch.setattr(grid_module, "run_request", runs)
    progress = []
    handler = logging.Handler()
    handler.emit = lambda record: progress.append(record.getMessage())
    logging.getLogger("recbole_mdsrec.tables.grid").addHandler(handler)
    try:
        argv = ["--model=SASRec,MDSRec", f"--dataset={DATASET}", "--seeds=2", "--gpu_id="]
        assert cli.main(argv) == 0
    finally:
        logging.getLogger("recbole_mdsrec.tables.grid").removeHandler(handler)
    assert progress[0].startswith("run 1 of 4: SASRec, seed 1; elapsed ")
    assert "left" in progress[1]
    folder = tmp_path / "results" / DATASET
    table = (folder / "table.md").read_text()
    assert f"Command: `python run.py {' '.join(argv)}`" in table
    assert "Improvement of MDSRec over the best baseline" in table
    assert (folder / "chart.png").stat().st_size > 1000
    configs = sorted((folder / "configs").glob("*.yaml"))
    assert len(configs) == 4
    config = yaml.safe_load(configs[0].read_text())
    assert config["epochs"] == 200 and config["device"] == "cpu" and config["MODEL_TYPE"] == "SEQUENTIAL"
    rows = RunStore(folder).rows.values()
    assert {(r["model"], r["seed"]) for r in rows} == {("SASRec", 1), ("SASRec", 2), ("MDSRec", 1), ("MDSRec", 2)}
    assert all(r["epoch_seconds"] == 0.5 and r["n_parameters"] == 1234 for r in rows)

    # A list of presets is a grid over those alone, into the same ablation folder.
    runs.calls.clear()
    assert cli.main(["--model=MDSRec", "--variant=full,wo_rgc,authors", f"--dataset={DATASET}", "--seeds=1,",
                     "--gpu_id="]) == 0
    # full is the comparison's MDSRec at seed 1, reused
    assert [c[2] for c in runs.calls] == [variant_overrides("MDSRec", "wo_rgc"), variant_overrides("MDSRec", "authors")]
    listed = (folder / "ablation" / "table.md").read_text()
    assert "| MDSRec-authors " in listed and "| MDSRec-wo_ica " not in listed
    assert cli.main(["--model=MDSRec", "--variant=full,nonesuch", f"--dataset={DATASET}", "--gpu_id="]) == 2
    runs.calls.clear()
    assert cli.main(["--model=MDSRec", "--variant=all", f"--dataset={DATASET}", "--seeds=1,", "--gpu_id="]) == 0
    presets = [c[2] for c in runs.calls]
    # `full` (the comparison's MDSRec), wo_rgc and authors ran before: reused, not trained again.
    assert {"n_graph_layers": 0} not in presets and {} not in presets and len(presets) == len(variants_of("MDSRec")) - 3
    table = (folder / "ablation" / "table.md").read_text()
    assert "Improvement of MDSRec-full over the best preset" in table and "| MDSRec-wo_rgc " in table

    failing = FakeRuns(failing_model="GRU4Rec")
    monkeypatch.setattr(grid_module, "run_request", failing)
    assert cli.main(["--model=SASRec,GRU4Rec", f"--dataset={DATASET}", "--gpu_id="]) == 1  # table written all the same
    main_table = markdown_tables((folder / "table.md").read_text())[0]
    assert ["GRU4Rec", "failed: RuntimeError: out of memory second line", "", "0/1"] in main_table
    assert cli.main(["--model=SASRec,GRU4Rec", "--seeds=0"]) == 2
    assert cli.main(["--model=SASRec,GRU4Rec", "--seeds=2", "--seed=3"]) == 2
    assert cli.main(["--model=SASRec", "--mode=grid", "--budget=none"]) == 2
    assert cli.main(["--model=SASRec,GRU4Rec", "--jobs=0"]) == 2
    # A trial grid in a folder of its own leaves the tables under results/ as they are.
    assert cli.main(["--mode=grid", "--model=SASRec", f"--dataset={DATASET}", "--results_dir=trials", "--gpu_id="]) == 0
    assert (tmp_path / "trials" / DATASET / "table.md").is_file()
    assert [c for c in failing.calls if c[0] == "SASRec"] == [], "the main table's SASRec run is reused, not retrained"
    assert "GRU4Rec" in (folder / "table.md").read_text()
    # The other way round only when asked: a main grid copies a trial folder's finished run with --reuse_from.
    failing.calls.clear()
    assert cli.main(["--mode=grid", "--model=SASRec", f"--dataset={DATASET}", "--seeds=4,", "--results_dir=trials",
                     "--gpu_id="]) == 0
    assert cli.main(["--mode=grid", "--model=SASRec", f"--dataset={DATASET}", "--seeds=4,", "--reuse_from=trials",
                     "--gpu_id="]) == 0
    assert [c[:2] for c in failing.calls] == [("SASRec", 4)], "trained once, in the trial folder"
    copied = [r for r in RunStore(folder).rows.values() if r["seed"] == 4]
    assert [r["config_hash"] for r in copied] == [r["config_hash"] for r in RunStore(tmp_path / "trials" / DATASET).rows.values()
                                                  if r["seed"] == 4]
    assert cli.main(["--mode=grid", "--model=SASRec", f"--dataset={DATASET}", "--reuse_from=nowhere", "--gpu_id="]) == 2
    failing.calls.clear()
    assert cli.main(["--model=SASRec,MDSRec", f"--dataset={DATASET}", "--seeds=3", "--table_only", "--gpu_id="]) == 0
    assert failing.calls == []  # nothing trained: seed 3 is left out
    table = (folder / "table.md").read_text()
    assert f"Command: `python run.py --model=SASRec,MDSRec --dataset={DATASET} --seeds=3 --gpu_id=`" in table
    assert "**State: partial.** 4 of 6 runs have results" in table
    assert cli.main(["--model=SASRec,GRU4RecF", f"--dataset={DATASET}", "--table_only", "--gpu_id="]) == 0
    assert ["GRU4RecF", "no results yet", "0/1"] == [c for c in markdown_tables((folder / "table.md").read_text())[0][2] if c]
    assert ["SASRec", *markdown_tables(table)[0][1][1:-1], "2/3"] == markdown_tables(table)[0][1]
    failing.calls.clear()
    assert cli.main(["--model=comparison", f"--dataset={DATASET}", "--table_only", "--gpu_id="]) == 0
    models = [row[0] for row in markdown_tables((folder / "table.md").read_text())[0][1:-1]]
    assert models == list(grid_cli.COMPARISON_MODELS) and failing.calls == []
    args, rest = cli.build_parser().parse_known_args(["--model=SASRec", "--seed=3"])
    assert rest == ["--seed=3"] and cli.resolve_mode(args) == "train"  # a config option, not --seeds


def test_a_grid_that_adds_runs_to_a_table_writes_that_table_again_not_its_own(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runs = FakeRuns()
    monkeypatch.setattr(grid_module, "run_request", runs)
    folder = tmp_path / "results" / DATASET
    whole = ["--model=SASRec,GRU4Rec,MDSRec", f"--dataset={DATASET}", "--seeds=2", "--gpu_id="]
    assert cli.main([*whole, "--table_only"]) == 0  # nothing trained yet: an empty table of three models
    capsys.readouterr()
    assert cli.main(["--mode=grid", "--model=MDSRec", f"--dataset={DATASET}", "--seeds=2,", "--gpu_id=",
                     "--show_progress=False"]) == 0
    assert [c[:2] for c in runs.calls] == [("MDSRec", 2)]
    printed = capsys.readouterr().out
    assert "These runs (MDSRec; seeds 2) are part of" in printed
    assert printed.count("Command: `") == 1  # the folder's table only, not a table of the new runs before it
    table = (folder / "table.md").read_text()
    assert f"Command: `python run.py {' '.join(whole)}`" in table
    rows = {row[0]: row for row in markdown_tables(table)[0][1:]}
    assert set(rows) == {"SASRec", "GRU4Rec", "MDSRec"} and rows["MDSRec"][-1] == "1/2"
    assert json.loads((folder / "summary.json").read_text())["command"] == f"python run.py {' '.join(whole)}"
    # Other settings are another table: written as its own.
    assert cli.main(["--mode=grid", "--model=MDSRec", f"--dataset={DATASET}", "--seeds=2,", "--gpu_id=",
                     "--epochs=3"]) == 0
    assert "--epochs=3" in (folder / "table.md").read_text()


@pytest.mark.shared_data
def test_two_models_end_to_end_on_the_real_slice(mm_config, tmp_path):
    # mm_config's own seed is overridden by the grid's; GRU4Rec and SASRec are the cheapest to train
    grid = GridSpec([Entry("GRU4Rec"), Entry("SASRec")], MM_SLICE, [1], tmp_path / "results", 1,
                    [GRID_YAML], {**mm_config, "MAX_ITEM_LIST_LENGTH": 10})
    outcomes = Grid(grid).run()
    assert [len(o.ok_rows) for o in outcomes] == [1, 1], [o.error for o in outcomes]
    for o in outcomes:
        row = o.ok_rows[0]
        assert row["epochs"] == 1 and row["n_parameters"] > 0 and 0 <= row["test_ndcg@10"] <= 1
        config = yaml.safe_load((grid.out_dir / "configs" / f"{o.label}-{row['config_hash']}.yaml").read_text())
        assert config["seed"] == 1 and config["MAX_ITEM_LIST_LENGTH"] == 10 and config["model"] == o.label
        # every user's metrics are kept, keyed by the dataset's user tokens, and average to the run's
        stored = RunStore(grid.out_dir).per_user(row)
        assert (grid.out_dir / "per_user" / f"{o.label}-{row['config_hash']}.csv.gz").is_file()
        assert row["epoch_cap"] == 1
        for split in ("valid", "test"):
            users = stored[split]["user"]
            assert len(users) == len(set(users)) > 0 and all(u.isdigit() for u in users)  # MovieLens user ids
            for metric in ("recall@10", "ndcg@10", "mrr@20"):
                assert stored[split][metric].shape == users.shape
                assert abs(float(stored[split][metric].mean()) - row[f"{split}_{metric}"]) <= 5e-5  # RecBole rounds to 4 places
    table = write_report(outcomes, ReportInfo("e2e", "cmd", [1], 1, reference="SASRec"), grid.out_dir).read_text()
    assert [row[0] for row in markdown_tables(table)[0][1:3]] == ["GRU4Rec", "SASRec"] and "p n/a (1 paired seeds)" in table
    # with one epoch both runs reached the cap: the per-user test is shown, no win is counted
    assert "GRU4Rec (not converged)" in table and "SASRec itself reached the epoch cap" in table
    assert (grid.out_dir / "chart.png").is_file()
    assert json.loads(outcomes[1].rows[0]["params"]) == {}


@pytest.mark.shared_data
def test_a_run_the_grid_left_unfinished_goes_on_from_its_last_epoch(mm_config, tmp_path, monkeypatch):
    grid = GridSpec([Entry("SASRec")], MM_SLICE, [1], tmp_path / "results", 1,
                    [GRID_YAML], {**mm_config, "MAX_ITEM_LIST_LENGTH": 10, "epochs": 2})
    state = interrupted_after_first_epoch(Grid(grid).run, monkeypatch)
    assert state.parent.parent == tmp_path / "saved" / "grid"
    first_epoch = torch.load(state, weights_only=True)["timing"]["epoch_seconds"]
    assert len(first_epoch) == 1

    resumed, results = [], []

    def tracking_run(request):
        resumed.append(request.resume)
        results.append(runner.run_request(request))
        return results[-1]

    (outcome,) = Grid(grid, run_fn=tracking_run).run()
    assert resumed == [str(state)]
    assert outcome.ok_rows[0]["epochs"] == 2
    # epoch 0 came from the state (its duration carried, not lost or retrained), epoch 1 ran now
    assert len(results[0].epoch_seconds) == 2 and results[0].epoch_seconds[0] == first_epoch[0]
    assert results[0].train_seconds > first_epoch[0]


@pytest.mark.shared_data
def test_a_training_state_of_other_code_is_set_aside_not_resumed(mm_config, tmp_path, monkeypatch):
    grid = GridSpec([Entry("SASRec")], MM_SLICE, [1], tmp_path / "results", 1,
                    [GRID_YAML], {**mm_config, "MAX_ITEM_LIST_LENGTH": 10, "epochs": 2})
    state = interrupted_after_first_epoch(Grid(grid).run, monkeypatch)
    written = torch.load(state, weights_only=True)
    torch.save({**written, "code_version": "0123456789ab"}, state)  # as if the code changed since

    resumed = []

    def tracking_run(request):
        resumed.append(request.resume)
        return runner.run_request(request)

    (outcome,) = Grid(grid, run_fn=tracking_run).run()
    assert resumed == [None] and outcome.ok_rows[0]["epochs"] == 2  # trained afresh, both epochs
    kept = state.with_name(state.name + ".0123456789ab")
    assert kept.is_file() and not state.exists()


@pytest.mark.shared_data
def test_runs_train_side_by_side_in_their_own_processes(mm_config, tmp_path):
    import os

    grid = GridSpec([Entry("GRU4Rec"), Entry("SASRec")], MM_SLICE, [1], tmp_path / "results", 1,
                    [GRID_YAML], {**mm_config, "MAX_ITEM_LIST_LENGTH": 10}, jobs=2)
    outcomes = Grid(grid).run()
    assert [len(o.ok_rows) for o in outcomes] == [1, 1], [o.error for o in outcomes]
    # checkpoint names carry the pid of the process that trained them
    pids = {row["checkpoint"].rsplit("-", 2)[1] for o in outcomes for row in o.ok_rows}
    assert len(pids) == 2 and str(os.getpid()) not in pids
    # trained again in this process (its own checkpoints: the others' states would be resumed)
    serial = Grid(GridSpec(grid.entries, MM_SLICE, [1], tmp_path / "serial", 1, grid.config_files,
                           {**grid.overrides, "checkpoint_dir": str(tmp_path / "serial_saved")})).run()
    assert all(str(os.getpid()) in o.ok_rows[0]["checkpoint"] for o in serial)
    assert [o.ok_rows[0]["test_ndcg@10"] for o in outcomes] == [o.ok_rows[0]["test_ndcg@10"] for o in serial]


def test_each_run_records_the_commit_it_ran_from(tmp_path):
    from pathlib import Path

    from recbole_mdsrec.provenance import checkout_version, code_version

    version = code_version()  # which commit that is: tests/test_provenance.py
    assert version == checkout_version(Path(__file__).resolve().parents[1])
    Grid(spec(tmp_path), run_fn=FakeRuns()).run()
    assert {row["code_version"] for row in read_runs(tmp_path)} == {version}
