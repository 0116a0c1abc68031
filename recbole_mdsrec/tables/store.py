"""The results folder of a grid: ``runs.csv`` (one row per run) and ``configs/`` (the
resolved config of each run). Every write replaces the whole file through a temporary
file (``recbole_mdsrec/files.py``), so an interrupt leaves either the old or the new file, never a
torn one, and each run is on disk as soon as it ends. Two grids may share a folder (two
commands on one dataset at once): each write re-reads ``runs.csv`` under a lock and adds
its row to what is there, so neither loses the other's runs."""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import json
import subprocess
from pathlib import Path

import yaml

from recbole_mdsrec.files import exclusive_lock, write_text_atomically
from recbole_mdsrec.tables.stats import metric_sort_key

# Keys that place files, pick hardware or shape logging: they never change a result, so
# a rerun with other paths or a GPU still finds its finished runs.
NON_RESULT_KEYS = frozenset({
    "gpu_id", "use_gpu", "device", "worker", "local_rank", "world_size", "nproc", "ip", "port",
    "offset", "single_spec", "state", "show_progress", "log_wandb", "wandb_project",
    "data_path", "checkpoint_dir", "graph_cache_dir", "save_dataset", "dataset_save_path",
    "save_dataloaders", "dataloaders_save_path", "eval_batch_size",
})

# Options added after results were recorded, at the value that reproduces the code from
# before they existed: left out of the hash there, so that earlier runs keep their identity.
NEUTRAL_DEFAULTS = {"feature_normalization": "none"}

HEAD_COLUMNS = ["model", "variant", "seed", "params", "status", "error"]
TAIL_COLUMNS = ["epochs", "train_seconds", "epoch_seconds", "eval_seconds", "n_parameters",
                "config_hash", "code_version", "checkpoint", "finished_at"]
INT_COLUMNS = {"seed", "epochs", "n_parameters"}
FLOAT_COLUMNS = {"train_seconds", "epoch_seconds", "eval_seconds"}
METRIC_PREFIXES = ("test_", "valid_")


def to_plain(value):
    """``value`` as plain yaml/json data: enums by name, other objects (a torch device) as text."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_plain(v) for v in value]
    return str(value)


def plain_config(config) -> dict:
    """A RecBole Config's resolved options as plain data."""
    return {str(k): to_plain(v) for k, v in config.final_config_dict.items()}


def config_hash(plain: dict) -> str:
    """Identity of a run: every option that can change its result (model, dataset, seed,
    hyper-parameters, protocol), none that only places files or shows progress."""
    kept = {k: v for k, v in plain.items()
            if k not in NON_RESULT_KEYS and not (k in NEUTRAL_DEFAULTS and v == NEUTRAL_DEFAULTS[k])}
    text = json.dumps(kept, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _parse(column: str, text: str):
    if text == "":
        return None if column in INT_COLUMNS | FLOAT_COLUMNS or column.startswith(METRIC_PREFIXES) else ""
    if column in INT_COLUMNS:
        return int(text)
    if column in FLOAT_COLUMNS or column.startswith(METRIC_PREFIXES):
        return float(text)
    return text


#: What decides a run's numbers besides its config (results/ and docs do not).
CODE_PATHS = ("recbole_mdsrec", "properties", "run.py", "setup.cfg", "constraints.txt")


def code_version() -> str:
    """The commit the code ran from (``+changes`` if tracked files under ``CODE_PATHS``
    differ from it), or ``unknown`` outside a git checkout: a config hash does not see code."""
    from recbole_mdsrec.paths import REPO_ROOT

    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = bool(git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS))
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if changed else "")


def label_of(model: str, variant: str | None) -> str:
    return f"{model}-{variant}" if variant else model


class RunStore:
    """The runs recorded in ``folder``; a rerun of a config hash replaces its old row."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.csv_path = self.folder / "runs.csv"
        self.rows: dict[str, dict] = {}
        self._reload()

    def _reload(self) -> None:
        """Read ``runs.csv`` as it is on disk now (another grid may have added rows)."""
        if not self.csv_path.is_file():
            return
        with self.csv_path.open(newline="") as handle:
            for raw in csv.DictReader(handle):
                row = {column: _parse(column, text) for column, text in raw.items()}
                self.rows[row["config_hash"]] = row

    def finished(self, hash_: str) -> dict | None:
        """The successful run with this config hash, if any (failed runs are tried again)."""
        self._reload()  # runs.csv is only ever replaced whole, so reading needs no lock
        row = self.rows.get(hash_)
        return row if row is not None and row["status"] == "ok" else None

    def config_path(self, model: str, variant: str | None, hash_: str) -> Path:
        return self.folder / "configs" / f"{label_of(model, variant)}-{hash_}.yaml"

    def record(self, row: dict, config: dict) -> None:
        """Write the run's config, then its row; both are complete on disk when this returns."""
        write_text_atomically(self.config_path(row["model"], row["variant"], row["config_hash"]),
                              yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        with exclusive_lock(self.folder / ".runs.csv.lock"):
            self._reload()
            self.rows[row["config_hash"]] = row
            write_text_atomically(self.csv_path, self._csv_text())

    def _csv_text(self) -> str:
        metric_columns = sorted({c for row in self.rows.values() for c in row if c.startswith(METRIC_PREFIXES)},
                                key=lambda c: (not c.startswith("test_"), metric_sort_key(c.partition("_")[2])))
        columns = HEAD_COLUMNS + metric_columns + TAIL_COLUMNS
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows.values():
            writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
        return out.getvalue()
