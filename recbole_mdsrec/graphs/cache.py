"""On-disk cache of the modal graphs.

The key hashes everything a graph depends on (the features, the mask, the training
interactions, every graph setting, and ``FORMAT_VERSION``), so a stale graph is never
reused silently: change any of them and the key changes.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import scipy.sparse as sp

from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.files import atomic_write

#: Bump when the graph construction changes in a way the settings do not capture.
FORMAT_VERSION = 1
_KEY = re.compile(r"[0-9a-f]{64}")


def graph_cache_key(
    features: Optional[np.ndarray],
    mask: Optional[np.ndarray],
    train_sequences_fingerprint: Union[bytes, str],
    settings: dict,
) -> str:
    """sha256 (hex) over the format version, features, mask, interactions and settings;
    ``features`` None for a matrix built from the interactions alone (the co-occurrence)."""
    digest = hashlib.sha256()

    def part(label: str, payload) -> None:
        # Label and length prefixes keep the concatenation unambiguous.
        digest.update(f"{label}:{len(payload)}:".encode())
        digest.update(payload)

    def array(label: str, values) -> None:
        values = np.ascontiguousarray(values)
        part(f"{label}-layout", f"{values.dtype.str}{values.shape}".encode())  # same bytes, other shape
        part(label, values.reshape(-1).view(np.uint8))  # a view: a large feature matrix is not copied

    part("version", str(FORMAT_VERSION).encode())
    if features is None:
        part("features", b"none")
    else:
        array("features", features)
    if mask is None:
        part("mask", b"none")
    else:
        array("mask", np.asarray(mask, dtype=bool))
    fingerprint = train_sequences_fingerprint
    part("interactions", fingerprint.encode() if isinstance(fingerprint, str) else bytes(fingerprint))
    part("settings", _settings_bytes(settings))
    return digest.hexdigest()


def load_or_build(cache_dir, key: str, builder: Callable[[], sp.spmatrix]) -> sp.csr_matrix:
    """The graph stored under ``key`` in ``cache_dir``, or ``builder()`` saved there first.

    An unreadable cache file is rebuilt with a warning; a cache that cannot be written
    only costs a warning, since the graph itself is fine.
    """
    if not _KEY.fullmatch(str(key)):
        raise ConfigError(f"graph cache key must be a sha256 hex digest from graph_cache_key(), got {key!r}.")
    path = Path(cache_dir) / f"graph-{key}.npz"
    if path.exists():
        try:
            return sp.csr_matrix(sp.load_npz(path))
        except Exception as err:  # any unreadable file (truncated zip, bad arrays, ...) is rebuilt
            warnings.warn(f"graph cache file {path} is unreadable ({err!r}); rebuilding it.", stacklevel=2)
    graph = sp.csr_matrix(builder())
    try:
        with atomic_write(path) as handle:  # readers never see half a file
            sp.save_npz(handle, graph)
    except OSError as err:
        warnings.warn(f"could not write graph cache file {path} ({err!r}); set graph_cache_dir to a writable folder.", stacklevel=2)
    return graph


def _settings_bytes(settings: dict) -> bytes:
    def json_default(value):
        if isinstance(value, np.generic):  # numpy scalars from configs hash like Python ones
            return value.item()
        raise ConfigError(
            f"graph setting value {value!r} ({type(value).__name__}) cannot be hashed into the graph "
            "cache key; use numbers, strings, booleans, null, lists or dicts of them."
        )

    return json.dumps(settings, sort_keys=True, default=json_default).encode()
