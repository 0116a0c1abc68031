"""Every model (or preset) × seed of one comparison, under one protocol.

For each entry: its tuning candidates are resolved at the first seed (the defaults, then
the search space in a fixed order, up to the shared budget); with more than one, each is
trained at the first seed and the best on validation wins; the winner then runs for every
seed (its first-seed run is the tuning run itself). Each run is recorded as soon as it
ends; a run whose config hash is already recorded as successful is skipped, so rerunning
the same command resumes; a run that raises is recorded as failed and the grid goes on.

With ``jobs`` > 1, runs train in that many spawned processes at once, each on its share of
the threads: entries go on side by side, and so do the seeds of an entry once its tuning
has picked the winner. The grid's own bookkeeping stays in this process, under a lock.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from recbole_mdsrec.errors import UserInputError
from recbole_mdsrec.tables import tuning
from recbole_mdsrec.tables.store import RunStore, code_version, config_hash, label_of, plain_config

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One row of the table: a model, or one preset of it."""

    model: str
    variant: str | None = None

    @property
    def label(self) -> str:
        return label_of(self.model, self.variant)


@dataclass
class GridSpec:
    entries: list[Entry]
    dataset: str | None
    seeds: list[int]
    out_dir: Path
    budget: int = 1
    config_files: list[str] = field(default_factory=list)
    overrides: dict = field(default_factory=dict)  # the command line's --key=value, above everything
    # Other results folders whose finished runs count here when the config hash is the same:
    # the ablation's `full` preset is MDSRec exactly as the comparison ran it.
    reuse_dirs: list[Path] = field(default_factory=list)
    jobs: int = 1  # runs trained at once, each in its own process


@dataclass
class Planned:
    """One run, resolved: its config as plain data and its identity."""

    entry: Entry
    params: dict  # the tuned options ({} = the defaults)
    seed: int
    config_dict: dict  # tuned values and preset, above the yaml files
    cmd_args: dict     # the command line's options and the seed, above everything
    config: dict
    hash: str


@dataclass
class Outcome:
    entry: Entry
    rows: list[dict] = field(default_factory=list)   # the winner at every seed
    tried: list[dict] = field(default_factory=list)  # tuning runs at the first seed, in order
    space_size: int = 1                              # configurations the search space offers
    winner: dict | None = None
    config: dict | None = None                       # the winner's resolved config (first seed)
    error: str | None = None                         # why the entry has no result at all

    @property
    def label(self) -> str:
        return self.entry.label

    @property
    def ok_rows(self) -> list[dict]:
        return [row for row in self.rows if row["status"] == "ok"]


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Grid:
    def __init__(self, spec: GridSpec, run_fn=None, clock=time.monotonic):
        self.spec = spec
        self.run_fn = run_fn
        self.clock = clock
        self.store = RunStore(spec.out_dir)
        self.reuse_stores = [RunStore(folder) for folder in spec.reuse_dirs if Path(folder) != Path(spec.out_dir)]
        self.total = 0
        self.position = 0
        self.started = clock()
        self.run_seconds: list[float] = []  # runs trained by this grid, for the estimate
        self.code_version = code_version()
        self._lock = threading.Lock()  # the bookkeeping above, and the stores, when jobs > 1
        self._slots = threading.Semaphore(spec.jobs)
        self._processes: ProcessPoolExecutor | None = None
        self._stopping = False

    def _resolve(self, entry: Entry, params: dict, seed: int) -> Planned:
        from recbole_mdsrec.config import Config
        from recbole_mdsrec.variants import variant_overrides

        preset = variant_overrides(entry.model, entry.variant) if entry.variant else {}
        config_dict = {**params, **preset}  # a preset's switches are not tuned away
        cmd_args = {**self.spec.overrides, "seed": seed}  # the grid's seed, whatever else says otherwise
        config = plain_config(Config(entry.model, self.spec.dataset, self.spec.config_files, config_dict, cmd_args))
        return Planned(entry, params, seed, config_dict, cmd_args, config, config_hash(config))

    def _candidates(self, entry: Entry) -> tuple[list[Planned], int]:
        """The first ``budget`` distinct configurations (defaults first) at the first seed,
        and how many the search space holds in all."""
        seed = self.spec.seeds[0]
        candidates: list[Planned] = []
        hashes: set[str] = set()
        first = self._resolve(entry, {}, seed)
        for params in tuning.combinations(tuning.search_space(first.config["model"])):
            planned = self._resolve(entry, params, seed) if params else first
            if planned.hash in hashes:  # equal to the defaults, or fixed by a preset or the command line
                continue
            hashes.add(planned.hash)
            if len(candidates) < self.spec.budget:
                candidates.append(planned)
        return candidates, len(hashes)

    def plan(self) -> list[tuple[Entry, list[Planned] | str, int]]:
        """Candidates of every entry, resolved before any training, so that a mistake in the
        input stops the grid at once; an entry whose config cannot be built for another reason
        (a model that fails to import) keeps its error and the others go on."""
        plans = []
        for entry in self.spec.entries:
            try:
                candidates, size = self._candidates(entry)
            except UserInputError:
                raise
            except Exception as error:  # noqa: BLE001 - recorded in the table, the grid goes on
                LOG.warning("%s cannot be set up: %s", entry.label, one_line(error), exc_info=True)
                plans.append((entry, one_line(error), 0))
                continue
            plans.append((entry, candidates, size))
            seeds = len(self.spec.seeds)
            self.total += len(candidates) + seeds - 1 if len(candidates) > 1 else seeds
        return plans

    def run(self) -> list[Outcome]:
        plans = self.plan()
        try:
            with self._training_processes():
                return self._map(lambda plan: self._plan_outcome(*plan), plans)
        except KeyboardInterrupt:
            LOG.warning("Interrupted during run %d of %d. Every finished run is in %s; run the same "
                        "command again to go on from there.", self.position, self.total, self.store.csv_path)
            raise

    @contextmanager
    def _training_processes(self):
        if self.spec.jobs == 1:
            yield
            return
        import torch

        threads = max(1, torch.get_num_threads() // self.spec.jobs)
        self._processes = ProcessPoolExecutor(self.spec.jobs, mp_context=multiprocessing.get_context("spawn"),
                                              max_tasks_per_child=1, initializer=torch.set_num_threads,
                                              initargs=(threads,))
        try:
            yield
        finally:
            self._processes.shutdown(cancel_futures=True)
            self._processes = None

    def _map(self, fn, items: list) -> list:
        """``[fn(item) for item in items]``, side by side when runs train in processes."""
        if self._processes is None or len(items) < 2:
            return [fn(item) for item in items]
        threads = ThreadPoolExecutor(len(items))
        try:
            return list(threads.map(fn, items))
        except BaseException:
            self._stop_training()  # else the threads would wait for every run in progress
            raise
        finally:
            threads.shutdown()

    def _stop_training(self) -> None:
        self._stopping = True
        for child in multiprocessing.active_children():
            child.terminate()  # its last epoch's training state is on disk: the rerun goes on from there

    def _plan_outcome(self, entry: Entry, candidates: list[Planned] | str, size: int) -> Outcome:
        if isinstance(candidates, str):
            return Outcome(entry, space_size=size, error=candidates)
        return self._run_entry(entry, candidates, size)

    def _run_entry(self, entry: Entry, candidates: list[Planned], size: int) -> Outcome:
        outcome = Outcome(entry, space_size=size)
        valid_metric = candidates[0].config["valid_metric"]
        if len(candidates) > 1:
            outcome.tried = self._map(
                lambda numbered: self._execute(numbered[1], f"tuning {numbered[0]} of {len(candidates)}: "
                                                            f"{tuning.describe(numbered[1].params)}"),
                list(enumerate(candidates, 1)))
            try:
                best = candidates[tuning.pick_winner(outcome.tried, valid_metric)]
            except ValueError:
                with self._lock:
                    self.total -= len(self.spec.seeds) - 1
                outcome.error = f"every tuning run failed; the first: {outcome.tried[0]['error']}"
                return outcome
            done = {self.spec.seeds[0]: outcome.tried[candidates.index(best)]}
        else:
            best, done = candidates[0], {}
        outcome.winner, outcome.config = best.params, best.config
        with self._lock:  # RecBole's Config is not known to be thread-safe
            planned = [done.get(seed) or (best if seed == best.seed else self._resolve(entry, best.params, seed))
                       for seed in self.spec.seeds]
        outcome.rows = self._map(lambda p: p if isinstance(p, dict) else self._execute(p), planned)
        if not outcome.ok_rows:
            outcome.error = outcome.rows[0]["error"]
        return outcome

    def _execute(self, planned: Planned, stage: str = "") -> dict:
        with self._slots:  # numbered and logged when it starts, not when it queues
            if self._stopping:
                raise KeyboardInterrupt
            try:
                row, new = self._train(planned, stage)
            except KeyboardInterrupt:  # from a run's process: no other run may take its slot
                self._stopping = True
                raise
        if new:
            with self._lock:
                self.store.record(row, planned.config)
        return row

    def _where(self, planned: Planned, stage: str) -> str:
        self.position += 1
        return f"run {self.position} of {self.total}: {planned.entry.label}, seed {planned.seed}" \
            + (f" ({stage})" if stage else "")

    def _train(self, planned: Planned, stage: str) -> tuple[dict, bool]:
        """The run's row, and whether it is new to this folder."""
        with self._lock:
            where = self._where(planned, stage)
            finished = self.store.finished(planned.hash)
            if finished is not None:
                LOG.info("%s: finished before (config %s), skipped", where, planned.hash)
                return finished, False
            reused = self._reused_row(planned, where)
            if reused is not None:
                return reused, True
            elapsed = self.clock() - self.started
            runs_left = (self.total - self.position + 1) / self.spec.jobs
            left = (f"about {format_duration(sum(self.run_seconds) / len(self.run_seconds) * runs_left)} left"
                    if self.run_seconds else "time left unknown until a run ends")
            LOG.info("%s; elapsed %s, %s", where, format_duration(elapsed), left)

        from recbole_mdsrec import runner
        from recbole_mdsrec.checkpoints import latest_training_state

        run_fn = self.run_fn or runner.run
        # One folder per run, so that a run the last grid left unfinished goes on from its last epoch.
        run_dir = Path(planned.config["checkpoint_dir"]) / "grid" / f"{self.spec.dataset}-{planned.hash}"
        kwargs = {"cmd_args": {**planned.cmd_args, "checkpoint_dir": str(run_dir)}}
        state = latest_training_state(run_dir)
        if state is not None:
            LOG.info("%s: going on from the interrupted run's training state %s", where, state)
            kwargs["resume"] = str(state)
        args = (planned.entry.model, self.spec.dataset, self.spec.config_files, planned.config_dict)
        start = self.clock()
        row = {"model": planned.entry.model, "variant": planned.entry.variant or "", "seed": planned.seed,
               "params": json.dumps(planned.params), "config_hash": planned.hash, "code_version": self.code_version}
        try:
            if self._processes is None:
                result = run_fn(*args, **kwargs)
            else:
                result = self._processes.submit(run_fn, *args, **kwargs).result()
        except Exception as error:  # noqa: BLE001 - a failing model must not stop the others
            if self._stopping:  # the grid is being interrupted: not this run's failure
                raise
            LOG.warning("%s failed: %s", where, one_line(error), exc_info=True)
            row.update(status="failed", error=one_line(error))
        else:
            row.update(status="ok", error="", **self._result_columns(result))
        row["finished_at"] = datetime.now().isoformat(timespec="seconds")
        with self._lock:
            self.run_seconds.append(self.clock() - start)
        return row, True

    def _reused_row(self, planned: Planned, where: str) -> dict | None:
        """The run's row if another grid's folder (``reuse_dirs``) finished it."""
        for other in self.reuse_stores:
            finished = other.finished(planned.hash)
            if finished is not None:
                LOG.info("%s: finished in %s (config %s), reused", where, other.folder, planned.hash)
                return {**finished, "variant": planned.entry.variant or "", "params": json.dumps(planned.params)}
        return None

    @staticmethod
    def _result_columns(result) -> dict:
        epochs = list(result.epoch_seconds)
        return {
            **{f"test_{k}": float(v) for k, v in result.test_result.items()},
            **{f"valid_{k}": float(v) for k, v in result.best_valid_result.items()},
            "epochs": result.epochs,
            "train_seconds": result.train_seconds,
            "epoch_seconds": sum(epochs) / len(epochs) if epochs else None,
            "eval_seconds": result.eval_seconds,
            "n_parameters": result.n_parameters,
            "checkpoint": result.checkpoint or "",
        }
