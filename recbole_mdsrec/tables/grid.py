"""Every model (or preset) × seed of one comparison, under one protocol.

The pieces: ``plan`` (what to run, resolved before any training), ``executor`` (where runs
train: here, or ``jobs`` processes at once), ``progress`` (run k of n, time left), ``store``
(``runs.csv`` and the configs). :class:`Grid` joins them: it starts every run the plan
allows, in plan order, as slots free up, and records each as soon as it ends. A run whose
config hash is already recorded as successful (here, or in a ``reuse_dirs`` folder) is
skipped, so rerunning the same command resumes; a run that raises is recorded as failed
and the grid goes on; a run the last grid left unfinished goes on from its last epoch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import datetime
from pathlib import Path

from recbole_mdsrec.errors import UserInputError
from recbole_mdsrec.tables.executor import (
    Finished,
    ProcessExecutor,
    SerialExecutor,
    one_line,
)
from recbole_mdsrec.tables.plan import (
    EntryPlan,
    GridSpec,
    Outcome,
    PlannedRun,
    entry_outcome,
    next_runs,
    plan_entry,
    tuning_failed,
)
from recbole_mdsrec.tables.progress import Progress
from recbole_mdsrec.provenance import code_version
from recbole_mdsrec.tables.store import RunStore
from recbole_mdsrec.tables.tuning import describe
from recbole_mdsrec.training.checkpoints import latest_training_state, set_aside, training_state_code
from recbole_mdsrec.training.runner import run_request

LOG = logging.getLogger(__name__)


class Grid:
    def __init__(self, spec: GridSpec, run_fn=None, clock=time.monotonic):
        """``run_fn(request) -> RunResult`` trains one run (default: ``runner.run_request``);
        with ``jobs`` > 1 it must be importable by name, as processes are spawned."""
        self.spec = spec
        self.run_fn = run_fn
        self.clock = clock
        self.store = RunStore(spec.out_dir)
        self.reuse_stores = [RunStore(folder) for folder in spec.reuse_dirs if Path(folder) != Path(spec.out_dir)]
        self.code_version = code_version()

    def plan(self) -> list[EntryPlan | Outcome]:
        """Every entry's plan, resolved before any training, so that a mistake in the input
        stops the grid at once; an entry whose config cannot be built for another reason
        (a model that fails to import) becomes a failed outcome and the others go on."""
        plans = []
        for entry in self.spec.entries:
            try:
                plans.append(plan_entry(self.spec, entry))
            except UserInputError:
                raise
            except Exception as error:  # noqa: BLE001 - recorded in the table, the grid goes on
                LOG.warning("%s cannot be set up: %s", entry.label, one_line(error), exc_info=True)
                plans.append(Outcome(entry, space_size=0, error=one_line(error)))
        return plans

    def run(self) -> list[Outcome]:
        plans = self.plan()
        runnable = [p for p in plans if isinstance(p, EntryPlan)]
        progress = Progress(sum(p.run_count for p in runnable), self.spec.jobs, self.clock)
        try:
            rows = self._schedule(runnable, progress)
        except KeyboardInterrupt:
            LOG.warning("Interrupted during run %d of %d. Every finished run is in %s; run the same "
                        "command again to go on from there.", progress.position, progress.total, self.store.csv_path)
            raise
        return [entry_outcome(p, rows) if isinstance(p, EntryPlan) else p for p in plans]

    def _executor(self):
        if self.spec.jobs == 1:
            return SerialExecutor()
        import torch

        return ProcessExecutor(self.spec.jobs, self.spec.tuning, torch.get_num_threads())

    def _schedule(self, plans: list[EntryPlan], progress: Progress) -> dict[str, dict]:
        """Rows of every run the plans lead to (config hash -> row)."""
        rows: dict[str, dict] = {}
        running: dict[str, tuple[PlannedRun, float]] = {}
        not_trained: set[str] = set()  # runs left out under train=False
        failed_tuning: set[str] = set()
        with self._executor() as executor:
            while True:
                free = len(running) < executor.slots
                ready = [run for plan in plans for run in next_runs(plan, rows)
                         if free and run.hash not in running and run.hash not in not_trained]
                if ready:
                    run = ready[0]  # one at a time: a finished row may change what is ready
                    where = progress.next(f"{run.entry.label}, seed {run.seed}" + self._stage(plans, run))
                    known = self._known_row(run, where)
                    if known is not None:
                        rows[run.hash] = known
                    elif not self.spec.train:
                        LOG.info("%s: not finished yet, left out of the table", where)
                        not_trained.add(run.hash)
                    else:
                        LOG.info("%s; %s", where, progress.timing())
                        running[run.hash] = (run, self.clock())
                        executor.submit(run.hash, self.run_fn or run_request, self._request(run, where))
                elif running:
                    for finished in executor.wait():
                        run, started = running.pop(finished.key)
                        progress.ran(self.clock() - started)
                        rows[run.hash] = self._record(run, finished)
                else:
                    return rows
                for plan in plans:  # an entry whose tuning runs all failed runs no seeds
                    if plan.entry not in failed_tuning and tuning_failed(plan, rows):
                        failed_tuning.add(plan.entry)
                        progress.drop(len(self.spec.seeds) - 1)

    @staticmethod
    def _stage(plans: list[EntryPlan], run: PlannedRun) -> str:
        plan = next(p for p in plans if p.entry == run.entry)
        if not plan.tunes or run not in plan.candidates:
            return ""
        return f" (tuning {plan.candidates.index(run) + 1} of {len(plan.candidates)}: {describe(run.params)})"

    def _known_row(self, run: PlannedRun, where: str) -> dict | None:
        """The run's row if this folder or a ``reuse_dirs`` folder finished it."""
        finished = self._usable(self.store, self.store.finished(run.hash), where)
        if finished is not None:
            LOG.info("%s: finished before (config %s), skipped", where, run.hash)
            return finished
        for other in self.reuse_stores:
            finished = self._usable(other, other.finished(run.hash), where)
            if finished is not None:
                LOG.info("%s: finished in %s (config %s), reused", where, other.folder, run.hash)
                return self._reuse(run, finished, other)
        for store in (self.store, *self.reuse_stores):
            twin = self._usable(store, store.stopped_early_twin(run.config), where)
            if twin is not None:
                LOG.info("%s: config %s in %s is this run under epochs=%d, which it stopped early within "
                         "(%d epochs): reused as config %s", where, twin["config_hash"], store.folder,
                         twin["epoch_cap"], twin["epochs"], run.hash)
                return self._reuse(run, twin, store)
        return None

    def _usable(self, store: RunStore, row: dict | None, where: str) -> dict | None:
        """``row`` unless the grid retrains runs recorded without per-user metrics and it is one."""
        if row is None or not self.spec.rerun_without_per_user or store.has_per_user(row):
            return row
        LOG.info("%s: config %s in %s has no per-user metrics: trained again", where, row["config_hash"], store.folder)
        return None

    def _reuse(self, run: PlannedRun, finished: dict, store: RunStore) -> dict:
        """Record another folder's (or config's) finished run as this run; ``epoch_cap`` keeps
        the cap it trained under."""
        row = {**finished, "variant": run.entry.variant or "", "params": json.dumps(run.params),
               "config_hash": run.hash}
        self.store.record(row, run.config, per_user=store.per_user(finished))
        return row

    def _request(self, run: PlannedRun, where: str):
        """The run's request, with a checkpoint folder of its own, so that a run the last grid
        left unfinished goes on from its last epoch."""
        run_dir = Path(run.config["checkpoint_dir"]) / "grid" / f"{self.spec.dataset}-{run.hash}"
        state = latest_training_state(run_dir)
        written_by = None if state is None else training_state_code(state)
        if state is not None and written_by not in (None, self.code_version):
            # Other code may build other weights: set the state aside (kept) and start afresh.
            aside = set_aside(state, written_by)
            LOG.info("%s: the interrupted run's training state was written by code %s, this is %s: "
                     "starting afresh (the state is kept as %s)", where, written_by, self.code_version, aside)
            state = None
        if state is not None:
            LOG.info("%s: going on from the interrupted run's training state %s", where, state)
        return dataclasses.replace(run.request, overrides={**run.request.overrides, "checkpoint_dir": str(run_dir)},
                                   resume=None if state is None else str(state))

    def _record(self, run: PlannedRun, finished: Finished) -> dict:
        row = {"model": run.entry.model, "variant": run.entry.variant or "", "seed": run.seed,
               "params": json.dumps(run.params), "config_hash": run.hash, "code_version": self.code_version}
        if finished.error is None:
            row.update(status="ok", error="", **_result_columns(finished.result))
        else:
            LOG.warning("%s, seed %d failed: %s\n%s", run.entry.label, run.seed, finished.error, finished.traceback or "")
            row.update(status="failed", error=finished.error)
        row["finished_at"] = datetime.now().isoformat(timespec="seconds")
        self.store.record(row, run.config, per_user=None if finished.error else finished.result.per_user)
        return row


def _result_columns(result) -> dict:
    epochs = list(result.epoch_seconds)
    return {
        **{f"test_{k}": float(v) for k, v in result.test_result.items()},
        **{f"valid_{k}": float(v) for k, v in result.best_valid_result.items()},
        "epochs": result.epochs,
        "epoch_cap": result.config["epochs"] if result.config is not None else None,
        "train_seconds": result.train_seconds,
        "epoch_seconds": sum(epochs) / len(epochs) if epochs else None,
        "eval_seconds": result.eval_seconds,
        "n_parameters": result.n_parameters,
        "checkpoint": result.checkpoint or "",
    }
