"""The behaviour signal of RGC: item-item co-occurrence in users' training sequences.

Two weightings (option ``behavior_weighting``), both over the position pairs ``(p, q)`` of
one user's sequence with ``s_p = i`` and ``s_q = j``, summed over all users:

- ``window`` (default): ``B_ij`` counts the pairs with ``0 < |p - q| <= window``;
- ``inverse_distance`` (the authors' SGP4SR code, ``docs/sgp4sr.md``): every pair of the
  whole sequence adds ``1 / |p - q|``; ``window`` is not used.

Both directions are counted, so ``B`` is symmetric.  Pairs of an item with itself (a repeated item) are not
edges, so the diagonal is empty.  Id 0 is RecBole's padding: zeros in a sequence are
dropped before pairing and never get an entry.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import scipy.sparse as sp

from recbole_mdsrec.errors import ConfigError, DataError
from recbole_mdsrec.graphs._options import integer_option


WEIGHTINGS = ("window", "inverse_distance")


def cooccurrence(sequences: Iterable[np.ndarray], n_items: int, window: int = 3,
                 weighting: str = "window") -> sp.csr_matrix:
    """Co-occurrence ``B`` (float32 CSR, ``[n_items, n_items]``), weighted as ``weighting`` says.

    ``sequences`` holds each user's training items (RecBole internal ids ``1..n_items-1``)
    in time order; the caller guarantees no validation/test items are among them.
    """
    window = integer_option("behavior_window", window, 1, "set it to e.g. 3.")
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"behavior_weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}. "
                          "Fix: set behavior_weighting: window (pairs within behavior_window) or inverse_distance.")
    n_items = integer_option("n_items", n_items, 1, "pass the dataset's item_num (padding included).")
    items, owner = _concatenate(sequences)
    _check_ids(items, n_items)
    keep = items != 0
    items, owner = items[keep], owner[keep]

    # Whole sequences: offsets up to the longest one; a loop over offsets, not over interactions.
    longest = int(np.bincount(owner).max()) if owner.size else 1
    reach = window if weighting == "window" else max(1, longest - 1)
    rows, cols, weights = [], [], []
    for offset in range(1, reach + 1):
        same_user = owner[:-offset] == owner[offset:]
        if not same_user.any():
            break
        left, right = items[:-offset][same_user], items[offset:][same_user]
        distinct = left != right
        weight = 1.0 if weighting == "window" else 1.0 / offset
        rows += [left[distinct], right[distinct]]
        cols += [right[distinct], left[distinct]]
        weights.append(np.full(2 * int(distinct.sum()), weight, dtype=np.float32))

    rows, cols = np.concatenate(rows or [np.empty(0, np.int64)]), np.concatenate(cols or [np.empty(0, np.int64)])
    counts = np.concatenate(weights or [np.empty(0, np.float32)])
    # COO -> CSR sums the duplicate (i, j) pairs: the count, or the sum of 1 / distance.
    matrix = sp.coo_matrix((counts, (rows, cols)), shape=(n_items, n_items)).tocsr()
    matrix.sort_indices()
    return matrix


def _concatenate(sequences: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """All items end to end, and for each position the index of the sequence it came from."""
    arrays = [np.asarray(seq).ravel() for seq in sequences]
    if not arrays:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    for arr in arrays:
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise DataError(
                f"training sequences must hold integer item ids, got dtype {arr.dtype}; "
                "pass RecBole internal item ids (item_id field), not tokens or floats."
            )
    lengths = np.fromiter((arr.size for arr in arrays), dtype=np.int64, count=len(arrays))
    items = np.concatenate(arrays).astype(np.int64, copy=False)
    owner = np.repeat(np.arange(len(arrays), dtype=np.int64), lengths)
    return items, owner


def _check_ids(items: np.ndarray, n_items: int) -> None:
    if items.size and (items.min() < 0 or items.max() >= n_items):
        raise DataError(
            f"training sequences hold item ids in [{items.min()}, {items.max()}] but n_items is "
            f"{n_items} (valid ids 1..{n_items - 1}, 0 = padding); pass the dataset's item_num "
            "as n_items and internal ids, not raw item tokens."
        )


def row_l2_normalised(matrix: sp.spmatrix) -> sp.csr_matrix:
    """Each row divided by its L2 norm (empty rows stay empty): SGP4SR's smoothing of the
    ID embeddings by co-occurrence (``docs/sgp4sr.md`` §1)."""
    csr = sp.csr_matrix(matrix, dtype=np.float64)
    norms = np.sqrt(np.asarray(csr.multiply(csr).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return (sp.diags(scale) @ csr).astype(np.float32).tocsr()
