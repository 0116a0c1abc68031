"""How the frozen modal features are scaled before any model (or graph) sees them.

Pooled CNN features are non-negative and share a large common direction: on ml-100k-mm the
EfficientNet vectors have norm ~18, of which ~12 is the mean vector, while the sentence
vectors have norm 1. A linear projection initialised for unit-scale inputs then starts with
the image term ~18x the ID embedding, and cosine similarities between images are all high.
The option ``feature_normalization`` picks one treatment for every modality and every model
that reads the dataset, so that comparisons stay fair:

- ``none``: the vectors as extracted;
- ``l2``: each item's vector scaled to unit length (cosines, hence graphs, unchanged);
- ``center_l2``: the mean over the items that have the modality subtracted, then unit length.

Only rows of items that have the modality are touched: the others (and the padding row)
are zero by the feature files' contract (``feature_store``) and stay zero.
"""

from __future__ import annotations

import numpy as np

from recbole_mdsrec.errors import ConfigError

NORMALIZATIONS = ("none", "l2", "center_l2")
_TINY = 1e-12  # a shorter vector stays as it is (a masked-in zero row is legal: feature_store)


def check_normalization(how) -> None:
    """Refuse an unknown mode; the Config calls this too, so it fails before data preparation."""
    if how not in NORMALIZATIONS:
        raise ConfigError(
            f"feature_normalization must be one of {', '.join(NORMALIZATIONS)}; got {how!r}. "
            "Fix: set --feature_normalization=none (the features as extracted), l2 or center_l2."
        )


def normalize_features(features: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
    """``features`` [n, d] treated as ``how`` says, as a new float32 array; masked-out rows stay 0."""
    check_normalization(how)
    out = np.array(features, dtype=np.float32, copy=True)
    if how == "none" or not mask.any():
        return out
    if how == "center_l2":
        out[mask] -= out[mask].mean(axis=0, dtype=np.float64).astype(np.float32)
    norms = np.linalg.norm(out[mask], axis=1, keepdims=True)
    out[mask] /= np.where(norms > _TINY, norms, 1.0)
    return out
