"""Interest clusters of a modality: k-means over its raw item features (the authors' SGP4SR
code, ``docs/sgp4sr.md`` §3), as a membership matrix whose rows average their members.

The clustering is spherical (cosine, as the graphs' similarity; ``graphs/kmeans.py``) on the
L2-normalised features of the items that have the modality; SGP4SR runs Euclidean
mini-batch k-means on the raw rows, padding included. Items lacking the modality and the
padding row belong to no cluster; clusters left without members are dropped.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recbole_mdsrec.graphs._options import integer_option
from recbole_mdsrec.graphs.kmeans import nearest_centroids, spherical_kmeans
from recbole_mdsrec.graphs.propagate import to_torch_sparse

#: The clustering is a frozen input, the same for every training seed.
CLUSTER_SEED = 0


def interest_clusters(features, mask, n_clusters: int) -> torch.Tensor:
    """Membership ``S`` [C, N] (torch sparse CSR, C <= ``n_clusters``): ``S[c, i] = 1/|c|``
    for each member i of cluster c, so ``S @ H`` is each cluster's mean item vector."""
    n_clusters = integer_option("n_interests", n_clusters, 1, "set it to e.g. 50.")
    feats = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    valid = torch.as_tensor(np.asarray(mask, dtype=bool)).clone() if mask is not None else torch.ones(len(feats), dtype=torch.bool)
    valid[0] = False
    members = torch.nonzero(valid).squeeze(1)
    points = F.normalize(feats[members], dim=1)
    centroids = spherical_kmeans(points, n_clusters, seed=CLUSTER_SEED)
    labels = nearest_centroids(points, centroids, 1)[:, 0]
    used, labels = torch.unique(labels, return_inverse=True)  # drop empty clusters
    sizes = torch.bincount(labels, minlength=len(used)).double()
    membership = sp.csr_matrix(((1.0 / sizes[labels]).numpy(), (labels.numpy(), members.numpy())),
                               shape=(len(used), len(feats)))
    return to_torch_sparse(membership)
