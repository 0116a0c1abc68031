"""The results folder of a grid: ``runs.csv`` (one row per run), ``configs/`` (the
resolved config of each run; ``schema.py`` says which options make a run's identity) and
``per_user/`` (each run's validation and test metrics per user, keyed by user token, one
gzip-compressed csv per run, ``<label>-<hash>.csv.gz``: what the per-user significance tests
read, without retraining; mostly zeros, so about a ninth of the plain csv, which runs
recorded before the compression wrote and which is still read). Every write replaces the whole file through a temporary
file (``recbole_mdsrec/files.py``), so an interrupt leaves either the old or the new file, never a
torn one, and each run is on disk as soon as it ends. Two grids may share a folder (two
commands on one dataset at once): each write re-reads ``runs.csv`` under a lock and adds
its row to what is there, so neither loses the other's runs."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import numpy as np
import yaml

from recbole_mdsrec.files import atomic_write, exclusive_lock, write_text_atomically
from recbole_mdsrec.metrics import metric_sort_key
from recbole_mdsrec.schema import identity_options

HEAD_COLUMNS = ["model", "variant", "seed", "params", "status", "error"]
TAIL_COLUMNS = ["epochs", "epoch_cap", "train_seconds", "epoch_seconds", "eval_seconds", "n_parameters",
                "config_hash", "code_version", "checkpoint", "finished_at"]
INT_COLUMNS = {"seed", "epochs", "epoch_cap", "n_parameters"}
FLOAT_COLUMNS = {"train_seconds", "epoch_seconds", "eval_seconds"}
METRIC_PREFIXES = ("test_", "valid_")


def _parse(column: str, text: str):
    if text == "":
        return None if column in INT_COLUMNS | FLOAT_COLUMNS or column.startswith(METRIC_PREFIXES) else ""
    if column in INT_COLUMNS:
        return int(text)
    if column in FLOAT_COLUMNS or column.startswith(METRIC_PREFIXES):
        return float(text)
    return text


def label_of(model: str, variant: str | None) -> str:
    return f"{model}-{variant}" if variant else model


class RunStore:
    """The runs recorded in ``folder``; a rerun of a config hash replaces its old row."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.csv_path = self.folder / "runs.csv"
        self.rows: dict[str, dict] = {}
        self._configs: dict[str, dict | None] = {}  # config hash -> its configs/ yaml, read once
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

    def stopped_early_twin(self, config: dict) -> dict | None:
        """A successful run whose config is ``config`` but for its epoch cap, that stopped
        early, after no more epochs than ``config``'s cap: the same run as ``config``'s, since
        the cap only bounds the epoch loop (RecBole trains no schedule that reads it). Of
        several such runs, one with per-user metrics first."""
        self._reload()
        cap, wanted = config["epochs"], _uncapped(config)
        twins = []
        for row in self.rows.values():
            epochs = row.get("epochs")
            if row["status"] != "ok" or row["model"] != config["model"] or epochs is None or epochs > cap:
                continue
            stored = self._stored_config(row)
            if stored is None:
                continue
            row_cap = row.get("epoch_cap") or stored["epochs"]  # rows before the epoch_cap column
            if epochs < row_cap and _uncapped(stored) == wanted:
                twins.append(row)
        return next((row for row in twins if self.has_per_user(row)), twins[0] if twins else None)

    def _stored_config(self, row: dict) -> dict | None:
        """The row's resolved config as ``configs/`` keeps it (the same for a hash every time it is written)."""
        hash_ = row["config_hash"]
        if hash_ not in self._configs:
            path = self.config_path(row["model"], row["variant"], hash_)
            self._configs[hash_] = yaml.safe_load(path.read_text()) if path.is_file() else None
        return self._configs[hash_]

    def config_path(self, model: str, variant: str | None, hash_: str) -> Path:
        return self.folder / "configs" / f"{label_of(model, variant)}-{hash_}.yaml"

    def per_user_path(self, model: str, variant: str | None, hash_: str) -> Path:
        return self.folder / "per_user" / f"{label_of(model, variant)}-{hash_}.csv.gz"

    def _per_user_file(self, row: dict) -> Path | None:
        path = self.per_user_path(row["model"], row["variant"], row["config_hash"])
        plain = path.with_suffix("")  # <label>-<hash>.csv, as runs before the compression were kept
        return next((p for p in (path, plain) if p.is_file()), None)

    def has_per_user(self, row: dict) -> bool:
        return self._per_user_file(row) is not None

    def per_user(self, row: dict) -> dict[str, dict[str, np.ndarray]] | None:
        """``{"valid": {"user": tokens, "ndcg@10": values, ...}, "test": {...}}`` of a recorded
        run, or None for a run recorded without them."""
        path = self._per_user_file(row)
        if path is None:
            return None
        data = path.read_bytes()
        return _read_per_user((gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8"))

    def record(self, row: dict, config: dict, per_user: dict | None = None) -> None:
        """Write the run's per-user metrics and config, then its row; all are complete on disk
        when this returns, and a row is never on disk without the files it names."""
        if per_user:
            with atomic_write(self.per_user_path(row["model"], row["variant"], row["config_hash"])) as handle:
                handle.write(gzip.compress(_per_user_text(per_user).encode("utf-8"), mtime=0))  # mtime 0: same run, same bytes
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


def _uncapped(config: dict) -> dict:
    return {k: v for k, v in identity_options(config).items() if k != "epochs"}


def _per_user_text(per_user: dict[str, dict[str, np.ndarray]]) -> str:
    """One row per user token, a column ``<split>_<metric>`` per split and metric (as
    ``runs.csv`` names them), each value the shortest text that reads back as the same
    float32; a cell is empty where a split did not score that user."""
    splits = list(per_user)
    users = list(dict.fromkeys(str(u) for split in splits for u in per_user[split]["user"]))
    columns = [(split, name) for split in splits for name in per_user[split] if name != "user"]
    position = {split: {str(u): i for i, u in enumerate(per_user[split]["user"])} for split in splits}
    text = {(split, name): [np.format_float_positional(np.float32(v), unique=True, trim="-")
                            for v in per_user[split][name]] for split, name in columns}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user", *(f"{split}_{name}" for split, name in columns)])
    for user in users:
        writer.writerow([user, *(text[key][position[key[0]][user]] if user in position[key[0]] else ""
                                 for key in columns)])
    return out.getvalue()


def _read_per_user(text: str) -> dict[str, dict[str, np.ndarray]]:
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    out: dict[str, dict[str, np.ndarray]] = {}
    for index, column in enumerate(header[1:], start=1):
        split, _, name = column.partition("_")
        scored = [row for row in body if row[index] != ""]
        columns = out.setdefault(split, {"user": np.array([row[0] for row in scored])})
        columns[name] = np.array([float(row[index]) for row in scored], dtype=np.float32)
    return out
