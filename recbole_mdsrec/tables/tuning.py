"""The search space of each model (``properties/tuning/<Model>.yaml``: option -> list of
values) and the choice of its winner, on validation results only."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import yaml

from recbole_mdsrec import properties
from recbole_mdsrec.errors import ConfigError


def search_space(model: str) -> dict[str, list]:
    """The model's tuning file as option -> values; empty when it has none."""
    path = properties.path("tuning", f"{model}.yaml")
    if not path.is_file():
        return {}
    space = yaml.safe_load(path.read_text()) or {}
    bad = [key for key, values in space.items() if not isinstance(values, list) or not values] \
        if isinstance(space, dict) else ["(the file is not a mapping)"]
    if bad:
        raise ConfigError(
            f"{path}: {', '.join(map(str, bad))} must map to a non-empty list of values. "
            "Fix: write one option a line as `option: [value1, value2]`."
        )
    return space


def combinations(space: dict[str, list]) -> Iterator[dict]:
    """The defaults first (no overrides), then the cartesian product in file order (the last
    option varies fastest). A fixed order, so that a budget of N is the same first N
    configurations on every rerun; combinations equal to the defaults are dropped later,
    once configs are resolved."""
    yield {}
    keys = list(space)
    for values in itertools.product(*(space[key] for key in keys)):
        yield dict(zip(keys, values))


def pick_winner(rows: list[dict], valid_metric: str) -> int:
    """Index of the best successful row by ``valid_<metric>``; the earliest wins a tie, so
    the defaults are kept unless another configuration is strictly better."""
    column = f"valid_{valid_metric.lower()}"
    scored = [(row[column], -i) for i, row in enumerate(rows)
              if row["status"] == "ok" and row.get(column) is not None]
    if not scored:
        raise ValueError("no successful run to choose from")
    return -max(scored)[1]


def describe(params: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in params.items()) or "defaults"
