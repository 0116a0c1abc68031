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


def transposed(graph: torch.Tensor) -> torch.Tensor:
    """The transpose of a torch sparse CSR matrix, as sparse CSR."""
    rows, cols = graph.shape
    matrix = sp.csr_matrix((graph.values().numpy(), graph.col_indices().numpy(), graph.crow_indices().numpy()),
                           shape=(rows, cols))
    return to_torch_sparse(matrix.T)


COMBINATIONS = ("mean", "last")


def propagate(graph: torch.Tensor, x: torch.Tensor, n_layers: int, transpose: torch.Tensor | None = None,
              combination: str = "mean") -> torch.Tensor:
    """``mean(X, ÂX, Â²X, ..., Â^L X)`` with ``L = n_layers`` (LightGCN), or ``Â^L X`` alone
    (``combination='last'``); ``L = 0`` returns X.

    ``transpose`` is ``Âᵀ`` for the backward pass; None means ``graph`` is symmetric, as
    ``build_modal_graph`` makes it unless ``graph_symmetric`` is none or
    ``graph_normalization`` is row_mean.
    """
    n_layers = integer_option("n_graph_layers", n_layers, 0, "0 disables the graph.")
    if n_layers == 0:
        return x
    # Sparse products have no bfloat16/float16 kernel: the propagation runs in float32 (autocast
    # off), whatever precision the rest of the model computes in.
    with torch.autocast(device_type=x.device.type, enabled=False):
        total = layer = x.float()
        for _ in range(n_layers):
            layer = sparse_product(graph, graph if transpose is None else transpose, layer)
            total = total + layer
        return layer if combination == "last" else total / (n_layers + 1)


def sparse_product(matrix: torch.Tensor, transpose: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``matrix @ x`` in float32 for any autocast precision, ``transpose`` = ``matrixᵀ``."""
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _SparseMM.apply(matrix, transpose, x.float())


class _SparseMM(torch.autograd.Function):
    """``graph @ x`` whose gradient multiplies by a stored ``graphᵀ`` (the graph itself when
    symmetric): torch's generic CSR backward transposes the matrix on every call
    (benchmarks/README.md)."""

    @staticmethod
    def forward(ctx, graph, transpose, x):
        ctx.transpose = transpose
        return torch.sparse.mm(graph, x)

    @staticmethod
    def backward(ctx, grad_out):
        return None, None, torch.sparse.mm(ctx.transpose, grad_out)
