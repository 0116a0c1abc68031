"""What a grid has to run, and what its finished runs amount to: a plan, and pure functions of it.

For each entry (a model, or one preset of it) :func:`plan_entry` resolves, before any
training, its tuning candidates at the first seed (the defaults, then the search space in a
fixed order, up to the shared budget) and each candidate at every seed. From the rows
finished so far (config hash -> row), :func:`next_runs` says which runs may start now: the
candidates until each has a row, then the winner on validation at the other seeds (its
first-seed run is the tuning run itself); :func:`entry_outcome` says what the entry's table
row is made of.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from recbole_mdsrec.launch import ProcessTuning
from recbole_mdsrec.schema import config_hash, plain_config
from recbole_mdsrec.tables import tuning
from recbole_mdsrec.tables.store import label_of
from recbole_mdsrec.training.runner import RunRequest


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
    train: bool = True  # False: only the runs already recorded (a table of a grid still running)
    # True: a finished run recorded without per-user metrics (kept before they were) trains again
    rerun_without_per_user: bool = False
    tuning: ProcessTuning = ProcessTuning()  # applied in each run's process when jobs > 1


@dataclass(frozen=True)
class PlannedRun:
    """One run, resolved: what the runner gets, its options as plain data and its identity."""

    entry: Entry
    params: dict  # the tuned options ({} = the defaults)
    seed: int
    request: RunRequest
    config: dict
    hash: str


@dataclass(frozen=True)
class EntryPlan:
    entry: Entry
    candidates: tuple[PlannedRun, ...]            # at the first seed, the defaults first
    at_seeds: Mapping[str, tuple[PlannedRun, ...]]  # candidate hash -> the candidate at every seed
    space_size: int                               # configurations the search space offers

    @property
    def tunes(self) -> bool:
        return len(self.candidates) > 1

    @property
    def run_count(self) -> int:
        seeds = len(self.at_seeds[self.candidates[0].hash])
        return len(self.candidates) + seeds - 1 if self.tunes else seeds


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


def resolve_run(spec: GridSpec, entry: Entry, params: dict, seed: int) -> PlannedRun:
    """``entry`` with the tuned ``params`` at ``seed``, its config built as the run will build it."""
    from recbole_mdsrec.config import Config
    from recbole_mdsrec.variants import variant_overrides

    preset = variant_overrides(entry.model, entry.variant) if entry.variant else {}
    config_dict = {**params, **preset}  # a preset's switches are not tuned away
    overrides = {**spec.overrides, "seed": seed}  # the grid's seed, whatever else says otherwise
    request = RunRequest(entry.model, spec.dataset, tuple(spec.config_files), config_dict, overrides)
    config = plain_config(Config(entry.model, spec.dataset, list(spec.config_files), dict(config_dict), overrides))
    return PlannedRun(entry, params, seed, request, config, config_hash(config))


def plan_entry(spec: GridSpec, entry: Entry) -> EntryPlan:
    """The first ``budget`` distinct configurations of ``entry`` (defaults first) at the first
    seed, each at every seed, and how many distinct ones the search space holds in all."""
    first_seed, other_seeds = spec.seeds[0], spec.seeds[1:]
    defaults = resolve_run(spec, entry, {}, first_seed)
    candidates, hashes = [], set()
    for params in tuning.combinations(tuning.search_space(defaults.config["model"])):
        planned = resolve_run(spec, entry, params, first_seed) if params else defaults
        if planned.hash in hashes:  # equal to the defaults, or fixed by a preset or the command line
            continue
        hashes.add(planned.hash)
        if len(candidates) < spec.budget:
            candidates.append(planned)
    at_seeds = {c.hash: (c, *(resolve_run(spec, entry, c.params, seed) for seed in other_seeds)) for c in candidates}
    return EntryPlan(entry, tuple(candidates), at_seeds, len(hashes))


def winner(plan: EntryPlan, rows: Mapping[str, dict]) -> PlannedRun | None:
    """The candidate that won on validation, once every candidate has a row; None before,
    or when every candidate failed. Test results choose nothing."""
    if not plan.tunes:
        return plan.candidates[0]
    if any(c.hash not in rows for c in plan.candidates):
        return None
    metric = plan.candidates[0].config["valid_metric"]
    try:
        return plan.candidates[tuning.pick_winner([rows[c.hash] for c in plan.candidates], metric)]
    except ValueError:
        return None


def next_runs(plan: EntryPlan, rows: Mapping[str, dict]) -> list[PlannedRun]:
    """The runs of ``plan`` that can start now and have no row yet, in order."""
    pending = [c for c in plan.candidates if c.hash not in rows]
    if plan.tunes and pending:
        return pending
    best = winner(plan, rows)
    return [] if best is None else [run for run in plan.at_seeds[best.hash] if run.hash not in rows]


def tuning_failed(plan: EntryPlan, rows: Mapping[str, dict]) -> bool:
    return plan.tunes and all(c.hash in rows for c in plan.candidates) and winner(plan, rows) is None


def entry_outcome(plan: EntryPlan, rows: Mapping[str, dict]) -> Outcome:
    """The entry's table row from the rows its runs left (config hash -> row)."""
    outcome = Outcome(plan.entry, space_size=plan.space_size)
    if plan.tunes:
        outcome.tried = [rows[c.hash] for c in plan.candidates if c.hash in rows]
    if tuning_failed(plan, rows):
        outcome.error = f"every tuning run failed; the first: {outcome.tried[0]['error']}"
        return outcome
    best = winner(plan, rows)
    if best is None:
        return outcome
    outcome.winner, outcome.config = best.params, best.config
    outcome.rows = [rows[run.hash] for run in plan.at_seeds[best.hash] if run.hash in rows]
    if outcome.rows and not outcome.ok_rows:
        outcome.error = outcome.rows[0]["error"]
    return outcome
