"""Pieces the format readers share: finding a format's files, and published splits."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from recbole_mdsrec.data.raw import FixedSplit, require_file
from recbole_mdsrec.errors import DataError

_SHOWN = 5


def folder_of(spec, format_name: str) -> Path:
    if spec.path is None:
        raise DataError(f"--from={format_name} reads a folder of files. Fix: pass --path=FOLDER.")
    return require_file(Path(spec.path), f"folder of dataset '{spec.name}' ({format_name} files)")


def stem_of(spec, folder: Path, suffix: str, format_name: str) -> str:
    """``spec.stem``, or the one stem ``S`` for which ``S<suffix>`` exists in ``folder``."""
    if spec.stem:
        return spec.stem
    stems = sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}"))
    if len(stems) != 1:
        raise DataError(
            f"{folder} holds {len(stems)} files *{suffix} ({stems[:_SHOWN]}), so the {format_name} files' stem is "
            f"unclear. Fix: pass --stem=NAME for the files NAME{suffix}, ..."
        )
    return stems[0]


def file_in(folder: Path, name: str, what: str) -> Path:
    return require_file(folder / name, what)


def leave_one_out_split(users: Sequence[str], sequences: Sequence[Sequence[str]], source: str) -> FixedSplit:
    """The split whose test target is each user's last item and validation target the one before."""
    return FixedSplit({u: s[-2] for u, s in zip(users, sequences)}, {u: s[-1] for u, s in zip(users, sequences)}, source)


def read_benchmark_files(folder: Path, stem: str) -> dict[str, pd.DataFrame]:
    """``<stem>.{train,valid,test}.inter``: user, history (item_id_list) and target per row."""
    splits = {}
    for part in ("train", "valid", "test"):
        path = file_in(folder, f"{stem}.{part}.inter", f"{part} split file")
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        names = {c.split(":")[0]: c for c in table.columns}
        missing = [c for c in ("user_id", "item_id_list", "item_id") if c not in names]
        if missing:
            raise DataError(f"{path} lacks the column(s) {missing} (it has: {list(table.columns)}). Fix: give RecBole "
                            "benchmark files with user_id:token, item_id_list:token_seq and item_id:token.")
        splits[part] = pd.DataFrame({"user": table[names["user_id"]], "history": table[names["item_id_list"]].str.split(),
                                     "target": table[names["item_id"]]})
    return splits


def sequences_from_benchmark(splits: dict[str, pd.DataFrame], where: str) -> tuple[list[str], list[list[str]], FixedSplit]:
    """Each user's whole sequence from benchmark split files, checked to be leave-one-out by
    time: the training rows are the sequence's prefixes (in any row order), the validation
    target follows them and the test target follows that, and each history is the items
    before its target (the files may cut histories to their last items)."""
    train = splits["train"]
    sequences: dict[str, list[str]] = {}
    problems = []
    for user, rows in train.groupby("user", sort=False):
        # The rows may come in any order; each continues the one before it: its history is
        # the last items of the previous history plus the previous target.
        following = {tuple(h): t for h, t in zip(rows["history"], rows["target"])}
        starts = [h for h in following if len(h) == 1]
        if len(following) != len(rows) or len(starts) != 1:
            problems.append(f"user {user}: the training rows are not one sequence's prefixes")
            continue
        cap = max(map(len, following))
        sequence, history = [starts[0][0]], starts[0]
        while history in following:
            sequence.append(following.pop(history))
            history = tuple(sequence[-cap:])
        if following:
            problems.append(f"user {user}: {len(following)} training row(s) continue no prefix of the sequence")
            continue
        sequences[user] = sequence
    for part in ("valid", "test"):
        rows = splits[part]
        duplicated = rows["user"][rows["user"].duplicated()]
        if len(duplicated):
            problems.append(f"{part}: users {list(duplicated[:_SHOWN])} have more than one row")
        for user, history, target in rows.itertuples(index=False):
            sequence = sequences.get(user)
            if sequence is None:
                problems.append(f"{part}: user {user} has no training rows")
            elif history != sequence[-len(history):]:
                problems.append(f"{part}: user {user}'s history is not the items before its target")
            else:
                sequence.append(target)
        if len(problems) > _SHOWN:
            break
    rows_per_user = train["user"].value_counts()
    incomplete = [u for u, s in sequences.items() if len(s) != rows_per_user[u] + 3] if not problems else []
    problems += [f"user {u} lacks a validation or test row" for u in incomplete[:_SHOWN]]
    if problems:
        raise DataError(
            f"The benchmark split {where} is not leave-one-out by time ({len(problems)} problem(s); first: "
            f"{problems[:_SHOWN]}). Fix: give files where each user's test target is the last item, the validation "
            "target the one before, and the training rows every earlier prefix; or give the interactions in time "
            "order (--from=table) and let the plugin split them."
        )
    users = list(sequences)
    return users, [sequences[u] for u in users], leave_one_out_split(users, [sequences[u] for u in users], where)
