"""Sparse graphs as torch tensors, and LightGCN-style propagation over them."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from recbole_mdsrec.graphs._options import integer_option


def to_torch_sparse(matrix: sp.spmatrix) -> torch.Tensor:
    """A scipy matrix as a torch sparse CSR tensor (float32).

    CSR, not COO: ``torch.sparse.mm`` of a k=10 graph by ``[N, 64]`` on the CPU is several
    times faster in CSR (benchmarks/README.md).
    """
    csr = sp.csr_matrix(matrix, dtype=np.float32)
    csr.sort_indices()
    with warnings.catch_warnings():  # torch flags sparse CSR as "beta" on first use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data),
            size=csr.shape,
            check_invariants=False,  # scipy already guarantees them; checking costs a pass
        )


def propagate(graph: torch.Tensor, x: torch.Tensor, n_layers: int) -> torch.Tensor:
    """``mean(X, ÂX, Â²X, ..., Â^L X)`` with ``L = n_layers`` (LightGCN); ``L = 0`` returns X.

    ``graph`` must be symmetric, as ``build_modal_graph`` makes it: the backward pass
    multiplies by ``graph`` instead of its transpose.
    """
    n_layers = integer_option("n_graph_layers", n_layers, 0, "0 disables the graph.")
    if n_layers == 0:
        return x
    # Sparse products have no bfloat16/float16 kernel: the propagation runs in float32 (autocast
    # off), whatever precision the rest of the model computes in.
    with torch.autocast(device_type=x.device.type, enabled=False):
        total = layer = x.float()
        for _ in range(n_layers):
            layer = _SymmetricSparseMM.apply(graph, layer)
            total = total + layer
        return total / (n_layers + 1)


class _SymmetricSparseMM(torch.autograd.Function):
    """``graph @ x`` whose gradient reuses ``graph`` as its own transpose: torch's generic
    CSR backward transposes the matrix on every call (benchmarks/README.md)."""

    @staticmethod
    def forward(ctx, graph, x):
        ctx.graph = graph
        return torch.sparse.mm(graph, x)

    @staticmethod
    def backward(ctx, grad_out):
        return None, torch.sparse.mm(ctx.graph, grad_out)
