"""RGC graphs on the real MovieLens-100K: co-occurrence, block-wise kNN, graphs, cache.

Item ids are the MovieLens ids 1..1682 (row 0 = padding), as RecBole's internal ids would
be; features are the reference text/poster features of ../shared/datasets.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import N_ITEMS, assert_topk_equal, dense_scores, first_items
from recbole_mdsrec.errors import ConfigError, DataError
from recbole_mdsrec.graphs import knn
from recbole_mdsrec.graphs.behavior import cooccurrence
from recbole_mdsrec.graphs.build import build_modal_graph, knn_edges
from recbole_mdsrec.graphs.cache import graph_cache_key, load_or_build
from recbole_mdsrec.graphs.knn import topk_neighbours
from recbole_mdsrec.graphs.propagate import propagate, to_torch_sparse
from recbole_mdsrec.graphs.spec import GraphSpec

pytestmark = pytest.mark.shared_data

def naive_cooccurrence(seqs, n_items: int, window: int) -> np.ndarray:
    dense = np.zeros((n_items, n_items))
    for seq in seqs:
        seq = seq[seq != 0]
        for p in range(len(seq)):
            for q in range(len(seq)):
                if 0 < abs(p - q) <= window and seq[p] != seq[q]:
                    dense[seq[p], seq[q]] += 1
    return dense


# --- cooccurrence ---------------------------------------------------------------------


def test_cooccurrence_counts_hand_computed_pairs(sequences):
    s = sequences[0][:4]  # user 1's first four movies, all distinct
    assert len(set(s.tolist())) == 4
    b = cooccurrence([s], N_ITEMS, window=2)
    # Positions within 2 of each other: (0,1) (0,2) (1,2) (1,3) (2,3); never (0,3).
    pairs = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]
    expected = {(s[p], s[q]): 1.0 for p, q in pairs} | {(s[q], s[p]): 1.0 for p, q in pairs}
    assert dict(b.todok().items()) == expected
    assert b.dtype == np.float32 and b.shape == (N_ITEMS, N_ITEMS)
    assert b[s[0], s[3]] == 0  # 3 positions apart: outside window 2
    assert cooccurrence([s], N_ITEMS, window=3)[s[0], s[3]] == 1


def test_repeated_item_is_not_a_self_pair(sequences):
    a, b = sequences[0][:2]
    counts = cooccurrence([np.array([a, b, a])], N_ITEMS, window=3)
    assert counts[a, b] == 2 and counts[b, a] == 2  # positions (0,1) and (2,1)
    assert counts[a, a] == 0 and counts.nnz == 2


def test_users_are_not_linked_across_boundaries(sequences):
    u, v = sequences[0][:5], sequences[1][:5]
    assert not set(u.tolist()) & set(v.tolist())
    counts = cooccurrence([u, v], N_ITEMS, window=3)
    assert counts[u[-1], v[0]] == 0 and counts[v[0], u[-1]] == 0


@settings(max_examples=40, deadline=None)
@given(data=st.data(), window=st.integers(1, 6))
def test_cooccurrence_equals_pairwise_count(sequences, data, window):
    """Slices of real sequences, with repeats and padding zeros mixed in."""
    users = data.draw(st.lists(st.integers(0, len(sequences) - 1), min_size=1, max_size=4))
    seqs = []
    for u in users:
        seq = sequences[u][:12] % 40  # items 0..39: repeats and zeros (padding) occur
        seqs.append(seq)
    counts = cooccurrence(seqs, 40, window=window).toarray()
    np.testing.assert_array_equal(counts, naive_cooccurrence(seqs, 40, window))
    np.testing.assert_array_equal(counts, counts.T)
    assert not counts.diagonal().any() and not counts[0].any() and not counts[:, 0].any()


def test_full_behavior_matrix(behavior, sequences):
    assert (behavior != behavior.T).nnz == 0
    assert not behavior.diagonal().any() and behavior[0].nnz == 0 and behavior[:, 0].nnz == 0
    # No user rates a movie twice, so every position pair within 3 is an edge, both ways.
    pairs = sum(max(len(s) - o, 0) for s in sequences for o in (1, 2, 3))
    assert behavior.sum() == 2 * pairs


def test_inverse_distance_weighs_every_pair_of_a_whole_sequence(sequences):
    """SGP4SR's behaviour signal: every pair (p < q) of a user's sequence adds 1 / (q - p),
    both ways; repeats are not self pairs and padding zeros are dropped before pairing."""
    seqs = [np.r_[sequences[u][:30] % 60, 0, sequences[u][30:40] % 60] for u in range(8)]  # repeats, a zero
    expected = np.zeros((60, 60))
    for seq in seqs:
        seq = seq[seq != 0]
        for p in range(len(seq)):
            for q in range(p + 1, len(seq)):
                if seq[p] != seq[q]:
                    expected[seq[p], seq[q]] += 1 / (q - p)
                    expected[seq[q], seq[p]] += 1 / (q - p)
    got = cooccurrence(seqs, 60, window=3, weighting="inverse_distance").toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert (got > 0).sum() > (cooccurrence(seqs, 60, window=3).toarray() > 0).sum()  # pairs beyond the window
    with pytest.raises(ConfigError, match="behavior_weighting must be one of window, inverse_distance"):
        cooccurrence(seqs, 60, weighting="distance")
    # the default builds and caches graphs exactly as before the option existed
    assert "weighting" not in GraphSpec().as_dict()
    assert GraphSpec(weighting="inverse_distance").as_dict()["weighting"] == "inverse_distance"
    with pytest.raises(ConfigError, match="behavior_weighting"):
        GraphSpec(weighting="distance")


def test_cooccurrence_rejects_bad_input(sequences):
    with pytest.raises(ConfigError, match="behavior_window"):
        cooccurrence(sequences[:2], N_ITEMS, window=0)
    with pytest.raises(DataError, match="n_items"):
        cooccurrence(sequences[:2], 100)
    with pytest.raises(DataError, match="integer"):
        cooccurrence([sequences[0].astype(float)], N_ITEMS)


# --- topk_neighbours ------------------------------------------------------------------


@pytest.mark.parametrize(
    "k, block_size", [(10, 1), (10, 7), (10, 64), (10, 500), (10, 10_000), (10, None), (100, 64), (100, None)]
)
def test_topk_matches_dense_bruteforce(modal, k, block_size):
    features, mask = modal["image"]
    x, valid = features[1:501], mask[1:501]  # 500 real items, some without a poster
    assert not valid.all()
    # k = 10 takes the two-stage selection, k = 100 a plain topk.
    assert (knn._chunk_width(int(valid.sum()), k) is None) == (k == 100)
    indices, values = topk_neighbours(torch.from_numpy(x), k, torch.from_numpy(valid), block_size=block_size)
    assert indices.shape == values.shape == (500, k)
    assert_topk_equal(indices, values, dense_scores(x, valid), valid, k)


def test_two_stage_selection_with_duplicate_rows(modal):
    """Real rows repeated: every row has exact ties, chunk maxima included."""
    x = np.repeat(modal["text"][0][1:201], 3, axis=0)
    valid = np.ones(600, bool)
    assert knn._chunk_width(600, 5) is not None
    for block_size in (64, None):
        indices, values = topk_neighbours(torch.from_numpy(x), 5, block_size=block_size)
        assert_topk_equal(indices, values, dense_scores(x, valid), valid, 5)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_topk_bonus_dense_or_sparse(modal, sequences):
    features, mask, counts = first_items(400, modal, sequences)
    x, valid = features[1:], mask[1:]
    bonus = torch.from_numpy(3.0 * (counts[1:, 1:].toarray() > 0)).float()
    expected = dense_scores(x, valid, bonus)
    for as_tensor in (lambda b: b, lambda b: b.to_sparse_csr(), lambda b: b.to_sparse_coo()):
        indices, values = topk_neighbours(
            torch.from_numpy(x), 10, torch.from_numpy(valid), lambda s, e: as_tensor(bonus[s:e]), block_size=128
        )
        assert_topk_equal(indices, values, expected, valid, 10)


def test_topk_with_k_at_least_n(modal):
    x = torch.from_numpy(modal["text"][0][1:41])
    indices, values = topk_neighbours(x, 45)
    assert indices.shape == (40, 45)
    assert (indices[:, :39] >= 0).all() and (indices[:, 39:] == -1).all()
    assert torch.isneginf(values[:, 39:]).all()
    for i in range(40):
        assert set(indices[i, :39].tolist()) == set(range(40)) - {i}
    assert topk_neighbours(x, 0)[0].shape == (40, 0)


def test_invalid_items_are_never_neighbours(modal):
    features, mask = modal["image"]
    indices, _ = topk_neighbours(torch.from_numpy(features), 10, torch.from_numpy(mask))
    invalid = np.flatnonzero(~mask)
    assert len(invalid) > 1  # the padding row and the movies without a poster
    assert not np.isin(indices.numpy(), invalid).any()
    assert (indices[torch.from_numpy(~mask)] == -1).all()


def test_nan_features_are_rejected_unless_masked(modal):
    x = torch.from_numpy(modal["text"][0][1:20].copy())
    x[3, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        topk_neighbours(x, 3)
    valid = torch.ones(19, dtype=torch.bool)
    valid[3] = False  # a missing item's row is never read
    indices, _ = topk_neighbours(x, 3, valid)
    assert (indices[3] == -1).all() and not (indices == 3).any()


# --- graphs ---------------------------------------------------------------------------


def dense_reference(features, mask, counts, mode, edge_weight, beta=1.0):
    """The method doc's definition, densely: each row's ranking scores (-inf: not a
    candidate) and the weight each candidate edge would get."""
    n = features.shape[0]
    valid = mask.copy()
    valid[0] = False
    b = counts.toarray()
    cosine = dense_scores(features, valid).numpy().astype(np.float64)
    row_max = b.max(axis=1, keepdims=True)
    b_norm = np.divide(b, row_max, out=np.zeros_like(b), where=row_max > 0)
    bonus = {"behavior_knn": 3.0 * (b > 0), "modal_knn": 0.0, "behavior_weighted": beta * b_norm}[mode]
    rank = cosine + bonus
    weight = np.ones((n, n)) if edge_weight == "binary" else np.maximum(cosine, 0)
    lacking = np.flatnonzero(~valid)[1:]
    if mode != "modal_knn":  # items without the modality: their neighbours by count
        rank[lacking] = np.where(b[lacking] > 0, b[lacking], -np.inf)
        weight[lacking] = 1.0 if edge_weight == "binary" else b_norm[lacking]
    else:
        rank[lacking] = -np.inf
    rank[0] = -np.inf
    return rank, weight


def normalised_dense(directed: np.ndarray, symmetric: str) -> np.ndarray:
    """Symmetrise, add self loops, D^-1/2 A D^-1/2: the definition, densely."""
    n = directed.shape[0]
    adjacency = np.maximum(directed, directed.T) if symmetric == "max" else (directed + directed.T) / 2
    adjacency[np.arange(1, n), np.arange(1, n)] += 1.0
    degree = adjacency.sum(axis=1)
    inv_sqrt = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
    return inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]


@pytest.mark.parametrize(
    "mode, edge_weight, symmetric",
    [
        ("behavior_knn", "binary", "max"),
        ("behavior_knn", "similarity", "mean"),
        ("modal_knn", "binary", "max"),
        ("modal_knn", "similarity", "max"),
        ("behavior_weighted", "binary", "mean"),
        ("behavior_weighted", "similarity", "max"),
    ],
)
def test_graph_matches_dense_definition(modal, sequences, mode, edge_weight, symmetric):
    features, mask, counts = first_items(400, modal, sequences)
    assert not mask[1:].all()  # movies 330 and 387 have no poster
    spec = GraphSpec(mode=mode, k=10, edge_weight=edge_weight, symmetric=symmetric)
    directed = knn_edges(features, mask, counts, spec, block_size=64).toarray()
    rank, weight = dense_reference(features, mask, counts, mode, edge_weight)
    for i in range(len(rank)):
        chosen = np.flatnonzero(directed[i])
        candidates = np.sort(rank[i][np.isfinite(rank[i])])[::-1]
        assert len(chosen) == min(10, len(candidates))
        if len(chosen):  # the top-k up to near-ties (S + 3 in float32 rounds at ~2e-7)
            assert rank[i, chosen].min() >= candidates[len(chosen) - 1] - 1e-5
            np.testing.assert_allclose(directed[i, chosen], weight[i, chosen], atol=1e-6)

    graph = build_modal_graph(features, mask, counts, spec, block_size=64)
    assert graph.dtype == np.float32 and graph.shape == (401, 401)
    expected = normalised_dense(directed, symmetric)
    np.testing.assert_allclose(graph.toarray(), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(graph.sum(axis=1)).ravel(), expected.sum(axis=1), atol=1e-5)
    assert (graph != graph.T).nnz == 0
    assert (graph.diagonal()[1:] > 0).all()  # self loops
    assert graph[0].nnz == 0 and graph[:, 0].nnz == 0  # padding


def test_behavior_knn_prefers_cooccurring_items_and_differs_by_modality(modal, behavior):
    co_occur = (behavior > 0).astype(np.float64)
    chosen = {}
    for name, (features, mask) in modal.items():
        edges = (knn_edges(features, mask, behavior, GraphSpec(mode="behavior_knn", k=10)) > 0).astype(np.float64)
        valid = np.flatnonzero(mask)
        assert (edges[valid].getnnz(axis=1) == 10).all()
        # Co-occurring items first: a row holds min(10, #co-occurring) of them.
        n_co_occurring = np.asarray(co_occur[valid][:, valid].sum(axis=1)).ravel()
        picked = np.asarray(edges[valid].multiply(co_occur[valid]).sum(axis=1)).ravel()
        np.testing.assert_array_equal(picked, np.minimum(10, n_co_occurring))
        chosen[name] = edges
    # Same behaviour candidates, ranked by a different modality: different neighbours.
    both = np.flatnonzero(modal["image"][1])
    overlap = np.asarray(chosen["text"][both].multiply(chosen["image"][both]).sum(axis=1)).ravel() / 10
    assert overlap.mean() < 0.5


def test_modal_knn_ignores_behavior(modal, behavior):
    features, mask = modal["text"]
    without = build_modal_graph(features, mask, None, GraphSpec(mode="modal_knn"))
    with_b = build_modal_graph(features, mask, behavior, GraphSpec(mode="modal_knn"))
    assert (without != with_b).nnz == 0
    assert (without != build_modal_graph(features, mask, behavior)).nnz > 0


def test_behavior_weighted_without_weight_is_modal_knn(modal, behavior):
    features, mask = modal["text"]  # every movie has text: no behaviour-only rows
    modal_only = build_modal_graph(features, mask, behavior, GraphSpec(mode="modal_knn"))
    unweighted = build_modal_graph(features, mask, behavior, GraphSpec(mode="behavior_weighted", beta=0.0))
    assert abs(modal_only - unweighted).max() < 1e-6
    assert (build_modal_graph(features, mask, behavior, GraphSpec(mode="behavior_weighted")) != modal_only).nnz > 0


def test_items_without_the_modality(modal, behavior):
    features, mask = modal["image"]
    lacking = np.flatnonzero(~mask)[1:]  # movies without a poster (not the padding row)
    graph = build_modal_graph(features, mask, behavior, GraphSpec(mode="modal_knn"))
    for i in lacking:
        assert graph[i].indices.tolist() == [i] and graph[:, [i]].nonzero()[0].tolist() == [i]
    edges = knn_edges(features, mask, behavior, GraphSpec(mode="behavior_knn", k=10))
    has_poster = np.flatnonzero(mask)
    assert not np.isin(edges[has_poster].indices, lacking).any()  # never a modal neighbour
    for i in lacking:  # their own row: the top-10 co-occurring items by count
        row = behavior[i].toarray().ravel()
        top = np.lexsort((np.arange(N_ITEMS), -row))[:10]
        top = top[row[top] > 0]
        assert set(edges[i].indices.tolist()) == set(top.tolist())


def test_graph_with_k_at_least_n(modal):
    features = modal["text"][0][:41]
    graph = build_modal_graph(features, None, None, GraphSpec(mode="modal_knn", k=100)).toarray()
    np.testing.assert_allclose(graph[1:, 1:], np.full((40, 40), 1 / 40), atol=1e-7)


def test_unknown_options_raise_config_error(modal, behavior):
    features, mask = modal["text"]
    for option, value, allowed in [
        ("mode", "knn", "behavior_knn, modal_knn, behavior_weighted"),
        ("edge_weight", "cosine", "binary, similarity"),
        ("symmetric", "min", "max, mean"),
    ]:
        with pytest.raises(ConfigError, match=allowed):
            GraphSpec(**{option: value})
    # Messages name the yaml key a user sets (knn_k, behavior_beta), not the field.
    for option, value, key in [("k", -1, "knn_k"), ("k", 2.5, "knn_k"), ("window", 0, "behavior_window"),
                               ("beta", "high", "behavior_beta"), ("beta", float("nan"), "behavior_beta")]:
        with pytest.raises(ConfigError, match=key):
            GraphSpec(mode="behavior_weighted", **{option: value})
    with pytest.raises(ConfigError, match="graph_block_size"):
        build_modal_graph(features, mask, behavior, block_size=0)
    with pytest.raises(ConfigError, match="modal_knn"):
        build_modal_graph(features, mask, None, GraphSpec(mode="behavior_knn"))
    with pytest.raises(DataError, match="shape"):
        build_modal_graph(features, mask[:-1], behavior)


def test_spec_is_read_from_the_config_options(mm_config):
    from helpers import MM_SLICE
    from recbole_mdsrec.config import Config

    config = Config("MDSRec", MM_SLICE, config_dict={**mm_config, "knn_k": 7, "graph_mode": "modal_knn"})
    assert GraphSpec.from_config(config) == GraphSpec(mode="modal_knn", k=7)
    with pytest.raises(ConfigError, match="graph_symmetric"):
        GraphSpec.from_config(Config("MDSRec", MM_SLICE, config_dict={**mm_config, "graph_symmetric": "min"}))


def test_propagate_matches_dense(modal, sequences):
    features, mask, counts = first_items(400, modal, sequences)
    graph = build_modal_graph(features, mask, counts)
    dense = torch.from_numpy(graph.toarray())
    x = torch.from_numpy(modal["text"][0][:401]).requires_grad_()
    assert propagate(to_torch_sparse(graph), x, 0) is x
    out = propagate(to_torch_sparse(graph), x, 2)
    expected = (x + dense @ x + dense @ (dense @ x)) / 3
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    (grad,) = torch.autograd.grad(out.pow(2).sum(), x)
    (expected_grad,) = torch.autograd.grad(expected.pow(2).sum(), x)
    torch.testing.assert_close(grad, expected_grad, atol=1e-4, rtol=1e-4)
    with pytest.raises(ConfigError, match="n_graph_layers"):
        propagate(to_torch_sparse(graph), x, -1)


# --- cache ----------------------------------------------------------------------------


def fingerprint(seqs) -> bytes:
    return np.array([len(s) for s in seqs]).tobytes() + np.concatenate(seqs).tobytes()


SETTINGS = {"mode": "behavior_knn", "k": 10, "beta": 1.0, "self_loop": True, "edge_weight": "binary",
            "symmetric": "max", "window": 3, "modality": "image"}


def test_cache_key_changes_with_every_input(modal, sequences):
    features, mask, _ = first_items(200, modal, sequences)
    seqs = [s[s <= 200] for s in sequences]
    key = graph_cache_key(features, mask, fingerprint(seqs), SETTINGS)
    assert key == graph_cache_key(features.copy(), mask.copy(), fingerprint(seqs), dict(SETTINGS))
    changed_features = features.copy()
    changed_features[5, 7] += 1e-3
    flipped = mask.copy()
    flipped[10] = not flipped[10]
    other_seqs = [s.copy() for s in seqs]
    other_seqs[0] = other_seqs[0][:-1]  # one training interaction fewer
    others = [
        graph_cache_key(changed_features, mask, fingerprint(seqs), SETTINGS),
        graph_cache_key(features, flipped, fingerprint(seqs), SETTINGS),
        graph_cache_key(features, None, fingerprint(seqs), SETTINGS),
        graph_cache_key(features, mask, fingerprint(other_seqs), SETTINGS),
        graph_cache_key(features, mask, fingerprint(seqs).hex(), SETTINGS),
    ]
    alternatives = {"mode": "modal_knn", "k": 11, "beta": 0.5, "self_loop": False, "edge_weight": "similarity",
                    "symmetric": "mean", "window": 2, "modality": "text"}
    others += [graph_cache_key(features, mask, fingerprint(seqs), SETTINGS | {name: value})
               for name, value in alternatives.items()]
    others.append(graph_cache_key(features, mask, fingerprint(seqs), SETTINGS | {"block_size": 64}))
    assert len(set(others) | {key}) == len(others) + 1


def test_load_or_build_hits_and_rebuilds_corrupt_files(modal, sequences, tmp_path):
    features, mask, counts = first_items(200, modal, sequences)
    key = graph_cache_key(features, mask, b"interactions", SETTINGS)
    builds = []

    def builder():
        builds.append(1)
        return build_modal_graph(features, mask, counts)

    first = load_or_build(tmp_path, key, builder)
    second = load_or_build(tmp_path, key, builder)
    assert len(builds) == 1 and (first != second).nnz == 0
    path = tmp_path / f"graph-{key}.npz"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left

    for damage in (b"not a zip file", path.read_bytes()[:100]):
        path.write_bytes(damage)
        with pytest.warns(UserWarning, match="unreadable"):
            rebuilt = load_or_build(tmp_path, key, builder)
        assert (rebuilt != first).nnz == 0
    assert len(builds) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (load_or_build(tmp_path, key, builder) != first).nnz == 0  # the rebuilt file is good
    with pytest.raises(ConfigError):
        load_or_build(tmp_path, "../../etc/passwd", builder)


def test_graphs_read_each_users_items_but_the_validation_and_test_targets(mm_config, mm_slice):
    # The graphs must be blind to held-out targets: a leak would raise validation and test alike.
    from helpers import MM_SLICE, build_model
    from recbole_mdsrec.data.dataset import user_sequences

    _, (train_data, valid_data, test_data), _ = build_model("MDSRec", mm_config)
    train = train_data.dataset
    uid, iid = train.uid_field, train.iid_field
    user_tokens, item_tokens = train.field2id_token[uid], train.field2id_token[iid]
    held_out: dict[str, list[str]] = {}
    for split in (valid_data.dataset, test_data.dataset):
        for user, item in zip(split.inter_feat[uid].numpy(), split.inter_feat[iid].numpy()):
            held_out.setdefault(user_tokens[user], []).append(item_tokens[item])
    raw = pd.read_csv(mm_slice / MM_SLICE / f"{MM_SLICE}.inter", sep="\t", dtype=str)
    every_item = raw.groupby("user_id:token")["item_id:token"].apply(list).to_dict()

    users, _ = user_sequences(train)
    sequences = train.training_sequences()
    assert len(users) == len(sequences) == len(every_item) == 100
    for user, sequence in zip(users, sequences):
        token = user_tokens[user]
        seen = Counter(item_tokens[i] for i in sequence)
        assert len(held_out[token]) == 2 and not seen & Counter(held_out[token])
        assert seen + Counter(held_out[token]) == Counter(every_item[token])
    with pytest.raises(RuntimeError, match="training split only"):
        valid_data.dataset.training_sequences()
