"""Where prepared datasets, raw data and results live: one rule for every command, test
and benchmark.

Each root is, in this order: the option given (``--data_path``, ``--raw_data_path`` /
``prepare --raw_dir``, ``--results_dir``), the environment variable, or the default below
the working directory, as RecBole's own ``data_path: dataset/``. Run from the repository
root, the defaults are the checkout's ``dataset/`` and ``results/`` and the shared real
data beside it (``../shared/datasets/raw``).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ROOT_ENV = "MDSREC_DATA_ROOT"
RAW_ROOT_ENV = "MDSREC_RAW_ROOT"
RESULTS_ROOT_ENV = "MDSREC_RESULTS_ROOT"

DEFAULT_DATA_ROOT = "dataset"
DEFAULT_RAW_ROOT = os.path.join("..", "shared", "datasets", "raw")
DEFAULT_RESULTS_ROOT = "results"


def _root(option, variable: str, default: str) -> Path:
    chosen = option if option not in (None, "") else os.environ.get(variable) or default
    return Path(chosen).expanduser().absolute()


def data_root(option=None) -> Path:
    """The folder holding one sub-folder of RecBole atomic files per dataset."""
    return _root(option, DATA_ROOT_ENV, DEFAULT_DATA_ROOT)


def raw_root(option=None) -> Path:
    """The folder holding one sub-folder of raw files per dataset the plugin can prepare."""
    return _root(option, RAW_ROOT_ENV, DEFAULT_RAW_ROOT)


def results_root(option=None) -> Path:
    """The folder of side-by-side tables, one sub-folder per dataset."""
    return _root(option, RESULTS_ROOT_ENV, DEFAULT_RESULTS_ROOT)


def shared_root(option=None) -> Path:
    """The shared real data (``raw/`` and ``reference/``) the raw root belongs to."""
    return raw_root(option).parent
