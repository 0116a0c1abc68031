"""Property-based tests (hypothesis) of the graph builder and feature alignment, drawn from
rows of the real reference features: duplicated and zeroed rows, items lacking the
modality, k at or above the item count, and single-item sequences."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recbole_mdsrec.data.feature_store import ModalFeatures, align_to_item_ids
from recbole_mdsrec.graphs.behavior import cooccurrence
from recbole_mdsrec.graphs.build import build_modal_graph
from recbole_mdsrec.graphs.spec import GraphSpec

pytestmark = pytest.mark.shared_data

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def text_rows(shared_root) -> np.ndarray:
    return np.load(shared_root / "reference" / "ml-100k-mm" / "text_feat.npy")[:200]


@st.composite
def graph_inputs(draw, n_rows: int):
    n = draw(st.integers(2, 24))  # items 1..n; row 0 is padding
    picks = draw(st.lists(st.integers(0, n_rows - 1), min_size=n, max_size=n))  # repeats = duplicate vectors
    zeroed = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    lacking = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    item = st.integers(1, n)
    sequences = draw(st.lists(st.lists(item, min_size=1, max_size=6), min_size=1, max_size=8))  # incl. single items
    return {
        "picks": picks, "zeroed": np.array(zeroed), "mask": ~np.array(lacking), "sequences": sequences,
        "k": draw(st.integers(1, n + 3)),  # k >= N included
        "mode": draw(st.sampled_from(["behavior_knn", "modal_knn", "behavior_weighted"])),
        "edge_weight": draw(st.sampled_from(["binary", "similarity"])),
        "window": draw(st.integers(1, 3)),
    }


@SETTINGS
@given(data=st.data())
def test_graph_is_symmetric_normalised_and_respects_masks(text_rows, data):
    case = data.draw(graph_inputs(len(text_rows)))
    n = len(case["picks"])
    features = np.zeros((n + 1, text_rows.shape[1]), dtype=np.float32)
    features[1:] = text_rows[case["picks"]]
    features[1:][case["zeroed"] | ~case["mask"]] = 0.0
    mask = np.r_[False, case["mask"]]
    behavior = cooccurrence([np.array(s) for s in case["sequences"]], n + 1, window=case["window"])
    graph = build_modal_graph(features, mask, behavior, GraphSpec(mode=case["mode"], k=case["k"],
                                                                  edge_weight=case["edge_weight"]))
    dense = graph.toarray()

    assert dense.shape == (n + 1, n + 1)
    assert np.isfinite(dense).all() and (dense >= 0).all()
    assert np.allclose(dense, dense.T, atol=1e-6)
    assert not dense[0].any() and not dense[:, 0].any()
    # self loops, and every item keeps at least its own
    assert (np.diag(dense)[1:] > 0).all()
    # D^-1/2 A D^-1/2: for binary weights each entry is 1/sqrt(deg_i deg_j) of the 0/1 pattern
    if case["edge_weight"] == "binary":
        pattern = (dense > 0).astype(np.float64)
        degree = pattern.sum(1)
        rows, cols = np.nonzero(pattern)
        assert np.allclose(dense[rows, cols], 1.0 / np.sqrt(degree[rows] * degree[cols]), rtol=1e-5)
    # an item lacking the modality gets no modal edge: under modal_knn only its self loop
    if case["mode"] == "modal_knn":
        for item in np.flatnonzero(~mask[1:]) + 1:
            assert set(np.flatnonzero(dense[item])) == {item}


@SETTINGS
@given(data=st.data())
def test_single_item_sequences_add_no_behaviour(data):
    n = data.draw(st.integers(2, 30))
    singles = data.draw(st.lists(st.integers(1, n), min_size=1, max_size=10))
    behavior = cooccurrence([np.array([i]) for i in singles], n + 1, window=3)
    assert isinstance(behavior, sp.csr_matrix) and behavior.nnz == 0


@SETTINGS
@given(data=st.data())
def test_alignment_follows_tokens_whatever_the_order(text_rows, data):
    n = data.draw(st.integers(1, 40))
    file_tokens = np.array([f"item{i}" for i in range(n)])
    order = data.draw(st.permutations(range(n)))
    kept = data.draw(st.lists(st.sampled_from(range(n)), min_size=1, max_size=n, unique=True))  # RecBole's filtering
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    features = np.where(mask[:, None], text_rows[np.arange(n) % len(text_rows)], 0.0).astype(np.float32)
    stored = ModalFeatures("text", file_tokens[list(order)], features[list(order)], mask[list(order)], path=None)
    id_to_token = np.r_[["[PAD]"], file_tokens[kept]]

    aligned, aligned_mask = align_to_item_ids(stored, id_to_token, "slice")

    assert aligned.shape == (len(kept) + 1, text_rows.shape[1])
    assert not aligned[0].any() and not aligned_mask[0]
    assert np.array_equal(aligned[1:], features[kept])
    assert np.array_equal(aligned_mask[1:], mask[kept])
