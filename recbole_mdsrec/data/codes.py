"""Discrete code features (semantic IDs) as vectors every model and graph can read.

An item's modality may come as a fixed number ``L`` of codes, one per level of a residual
quantiser (RQ-VAE), each in ``0..K-1``: MQL4GRec writes ``["<a_170>", "<b_224>", "<c_251>",
"<d_151>"]``, other code bases plain integers. Each item becomes the one-hot vector of its
codes, level by level: ``L·K`` columns, ``L`` of them 1 (``docs/data.md`` says why). The
cosine of two such vectors is the share of levels on which the items have the same code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from recbole_mdsrec.data.raw import ModalArrays
from recbole_mdsrec.errors import DataError

_CODE = re.compile(r"<?([A-Za-z]*)_?(\d+)>?")
_SHOWN = 5


def read_codes(path: Path, modality: str, size: int | None = None) -> ModalArrays:
    """``{item token: [code, ...]}`` from a JSON file, as one-hot features."""
    path = Path(path)
    fix = 'give a JSON object of item token -> list of codes, e.g. {"12": ["<a_3>", "<b_250>"]}'
    if not path.is_file():
        raise DataError(f"The {modality} code file {path} does not exist. Fix: {fix}.")
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"The {modality} code file {path} is not valid JSON ({error}). Fix: {fix}.") from None
    if not isinstance(mapping, dict) or not all(isinstance(v, list) for v in mapping.values()):
        raise DataError(f"The {modality} code file {path} is not an object of lists. Fix: {fix}.")
    return codes_as_features(mapping, modality, size, where=str(path))


def codes_as_features(mapping: Mapping[str, Sequence], modality: str, size: int | None = None,
                      where: str = "the codes") -> ModalArrays:
    """One-hot per level of each item's codes (see the module docstring). ``size`` is ``K``;
    None takes the largest code seen plus one."""
    tokens = np.array([str(t) for t in mapping], dtype=str)
    lengths = {len(codes) for codes in mapping.values()}
    if len(lengths) != 1:
        by_length = {n: [t for t, c in mapping.items() if len(c) == n][:_SHOWN] for n in sorted(lengths)}
        raise DataError(
            f"In {where}, the {modality} code tuples have uneven lengths {sorted(lengths)} (items by length: "
            f"{by_length}); every item needs one code per level. Fix: give every item the same number of codes."
        )
    levels = lengths.pop()
    if levels == 0 or not len(tokens):
        raise DataError(f"In {where}, there are no {modality} codes. Fix: give each item at least one code.")
    codes, prefixes = _parse(mapping, levels, modality, where)
    if size is None:
        size = int(codes.max()) + 1
    bad = (codes < 0) | (codes >= size)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))[:_SHOWN]
        raise DataError(
            f"In {where}, {int(bad.sum())} {modality} code(s) lie outside 0..{size - 1} (items: "
            f"{[str(tokens[r]) for r in rows]}, codes {[codes[r].tolist() for r in rows]}). Fix: check the "
            f"code size (the part after ':' in --codes={modality}=FILE:{size}) or the file."
        )
    features = np.zeros((len(tokens), levels * size), dtype=np.float32)
    features[np.arange(len(tokens))[:, None], np.arange(levels) * size + codes] = 1.0
    source = {"input_fields": [where], "encoding": "one-hot per code level", "levels": levels,
              "codes_per_level": size, "level_prefixes": prefixes,
              "distinct_tuples": int(len(np.unique(codes, axis=0)))}
    return ModalArrays(tokens, features, np.ones(len(tokens), dtype=bool), source)


def _parse(mapping: Mapping[str, Sequence], levels: int, modality: str, where: str) -> tuple[np.ndarray, list[str]]:
    """Integer codes [n, L] and the letter prefix of each level ('' for plain numbers)."""
    codes = np.zeros((len(mapping), levels), dtype=np.int64)
    prefixes: list[set[str]] = [set() for _ in range(levels)]
    for row, (token, items) in enumerate(mapping.items()):
        for level, code in enumerate(items):
            if isinstance(code, (int, np.integer)) and not isinstance(code, bool):
                codes[row, level] = int(code)
                prefixes[level].add("")
                continue
            match = _CODE.fullmatch(str(code).strip())
            if match is None:
                raise DataError(
                    f"In {where}, item {token!r} has the {modality} code {code!r}, which is neither a number nor "
                    "of the form <a_12>. Fix: write each code as an integer or as <letter_number>."
                )
            prefixes[level].add(match.group(1))
            codes[row, level] = int(match.group(2))
    mixed = {level: sorted(p) for level, p in enumerate(prefixes) if len(p) > 1}
    if mixed:
        raise DataError(
            f"In {where}, code level(s) {sorted(mixed)} mix prefixes {mixed}: level l must use one prefix for "
            "every item (MQL4GRec: a, b, c, d). Fix: put each item's codes in level order."
        )
    return codes, [next(iter(p)) for p in prefixes]
