"""Finding a dataset's files before RecBole reads them, preparing known ones on first use."""

from __future__ import annotations

from logging import getLogger
from pathlib import Path

from recbole_mdsrec import roots
from recbole_mdsrec.errors import DataError
from recbole_mdsrec.files import exclusive_lock


def ensure_dataset(config) -> None:
    """Make sure ``<data_path>/<dataset>.inter`` exists.

    RecBole would try to download a missing dataset, which cannot work offline; instead a
    dataset this plugin knows how to build is prepared from the raw data root (option
    ``raw_data_path``, see ``recbole_mdsrec/roots.py``), and any other gets an error that
    says where its files are expected.
    """
    from recbole_mdsrec.data.prepare import DATASETS, prepare_dataset

    raw_root = roots.raw_root(config["raw_data_path"])
    name = config["dataset"]
    data_dir = Path(config["data_path"])
    if (data_dir / f"{name}.inter").is_file():
        return
    spec = DATASETS.get(name)
    if spec is not None and (raw_root / spec.raw_subdir).is_dir():
        # Runs of a grid with --jobs (or two commands) start at once: one prepares, the
        # others wait and find the files, rather than encoding everything again beside it
        # and reading a folder whose tables are written but not yet complete.
        with exclusive_lock(data_dir.parent / f".{name}.prepare.lock"):
            if not (data_dir / f"{name}.inter").is_file():
                getLogger().info(f"Dataset '{name}' is not prepared yet: building it from {raw_root / spec.raw_subdir}")
                prepare_dataset(name, raw_root, data_dir.parent, progress=True)
        return
    if spec is not None:
        how = (f"the raw files are expected in {raw_root / spec.raw_subdir} (see dataset/README.md); "
               f"then run `python -m recbole_mdsrec.cli.prepare {name}`")
    else:
        ready = sorted(p.parent.name for p in data_dir.parent.glob("*/*.inter") if p.stem == p.parent.name)
        how = (f"use a prepared dataset ({', '.join(ready + ['ml-100k']) }), one this plugin can prepare "
               f"({', '.join(DATASETS)}), or put RecBole atomic files for '{name}' in {data_dir}")
    raise DataError(f"Dataset '{name}' has no file {data_dir / (name + '.inter')}. Fix: {how}.")
