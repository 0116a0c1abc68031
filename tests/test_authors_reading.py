"""The authors' reading of MDSRec (``--variant=authors``) and SGP4SR, on real MovieLens data:
the intersect graph against its dense definition, row-mean and directed graphs, the
co-occurrence smoothing, interest clusters, and the model's scores, losses and gradients."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from helpers import build_model, dense_scores, first_items, train_step
from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.graphs.behavior import cooccurrence, row_l2_normalised
from recbole_mdsrec.graphs.build import build_modal_graph, knn_edges
from recbole_mdsrec.graphs.interests import interest_clusters
from recbole_mdsrec.graphs.propagate import propagate, to_torch_sparse, transposed
from recbole_mdsrec.graphs.spec import GraphSpec
from recbole_mdsrec.variants import variant_overrides

pytestmark = pytest.mark.shared_data

INTERSECT = GraphSpec(mode="intersect", k=9, modal_candidates=24, behavior_candidates=3, weighting="inverse_distance",
                      symmetric="none", self_loop=True, normalization="row_mean")


def dense_intersect(features, mask, counts, spec: GraphSpec) -> dict[int, list[int]]:
    """The definition, row by row: modal top-N that are in the behaviour top-M first, then
    the other modal candidates, in decreasing cosine, to k; items lacking the modality take
    their top-k co-occurring items. Also returns the rows whose modal ranking has near-ties."""
    n = features.shape[0]
    valid = mask.copy()
    valid[0] = False
    cosine = dense_scores(features, valid).numpy().astype(np.float64)
    b = counts.toarray()
    chosen, tied = {}, set()
    for i in range(1, n):
        by_count = [j for j in np.lexsort((np.arange(n), -b[i])) if b[i, j] > 0]
        if not valid[i]:
            chosen[i] = by_count[: spec.k]
            continue
        order = np.argsort(-cosine[i], kind="stable")
        modal = [j for j in order[: spec.modal_candidates] if np.isfinite(cosine[i, j])]
        behaviour = set(by_count[: spec.behavior_candidates])
        first = [j for j in modal if j in behaviour]
        rest = [j for j in order[: spec.modal_candidates + 1] if j not in behaviour]
        cut = spec.k - len(first)  # where the fill from the modal list stops
        def near(a, b, row=i):
            return abs(cosine[row, a] - cosine[row, b]) < 1e-5

        if near(order[spec.modal_candidates - 1], order[spec.modal_candidates]) or (
                0 < cut < len(rest) and near(rest[cut - 1], rest[cut])):
            tied.add(i)  # near-ties at a cut: the set depends on float rounding
        chosen[i] = (first + [j for j in modal if j not in behaviour])[: spec.k]
    return chosen, tied


def test_intersect_graph_matches_its_dense_definition(modal, sequences):
    features, mask, _ = first_items(400, modal, sequences)
    kept = [seq[seq <= 400] for seq in sequences]
    counts = cooccurrence(kept, 401, weighting="inverse_distance")
    assert not mask[1:].all()  # movies without a poster take their behaviour neighbours
    directed = knn_edges(features, mask, counts, INTERSECT, block_size=64).toarray()
    expected, tied = dense_intersect(features, mask, counts, INTERSECT)
    assert len(tied) < 20
    both_lists = 0
    for i, items in expected.items():
        if i not in tied:
            assert set(np.flatnonzero(directed[i])) == set(items), i
        both_lists += len(set(items) & set(np.flatnonzero(counts[i].toarray())))
    assert both_lists > 100  # the behaviour list does reorder the modal one on real data

    graph = build_modal_graph(features, mask, counts, INTERSECT, block_size=64).toarray()
    with_self = (directed > 0) | np.eye(401, dtype=bool)
    with_self[0] = False
    rows = with_self.sum(1)
    np.testing.assert_allclose(graph, np.where(with_self, 1.0 / np.maximum(rows, 1)[:, None], 0.0), atol=1e-7)
    np.testing.assert_allclose(graph[1:].sum(1), 1.0, atol=1e-6)  # each row averages its neighbours
    assert (graph != graph.T).any()  # directed: no symmetrisation
    assert (rows[1:][mask[1:]] == 10).all()  # SGP4SR's 10 edges: 9 neighbours and the item itself


def test_propagation_over_a_directed_graph_uses_its_transpose(modal, sequences):
    features, mask, counts = first_items(300, modal, sequences)
    graph = to_torch_sparse(build_modal_graph(features, mask, counts, INTERSECT))
    dense = graph.to_dense()
    x = torch.from_numpy(modal["text"][0][:301]).requires_grad_()
    out = propagate(graph, x, 2, transposed(graph), combination="last")
    expected = dense @ (dense @ x)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    (grad,) = torch.autograd.grad(out.pow(2).sum(), x)
    (expected_grad,) = torch.autograd.grad(expected.pow(2).sum(), x)
    torch.testing.assert_close(grad, expected_grad, atol=1e-4, rtol=1e-4)


def test_cooccurrence_smoothing_rows_have_unit_norm(sequences):
    counts = cooccurrence(sequences, 1683, weighting="inverse_distance")
    smoothing = row_l2_normalised(counts)
    norms = np.sqrt(np.asarray(smoothing.multiply(smoothing).sum(1)).ravel())
    has_pairs = np.asarray(counts.sum(1)).ravel() > 0
    np.testing.assert_allclose(norms[has_pairs], 1.0, atol=1e-5)
    assert (norms[~has_pairs] == 0).all() and smoothing[0].nnz == 0
    row = counts[50].toarray().ravel()
    np.testing.assert_allclose(smoothing[50].toarray().ravel(), row / np.linalg.norm(row), atol=1e-6)


def test_interest_clusters_average_their_members(modal):
    features, mask = modal["image"]
    membership = interest_clusters(features, mask, 50)
    dense = membership.to_dense()
    assert dense.shape[1] == len(features) and 40 <= dense.shape[0] <= 50
    belongs = dense > 0
    assert (belongs.sum(0)[1:][torch.from_numpy(mask[1:])] == 1).all()  # every item with a poster: one cluster
    assert not belongs[:, 0].any() and not belongs[:, torch.from_numpy(~mask)].any()  # padding, no poster: none
    h = torch.randn(len(features), 8)
    for c in range(dense.shape[0]):
        members = torch.nonzero(belongs[c]).squeeze(1)
        torch.testing.assert_close((membership @ h)[c], h[members].mean(0), atol=1e-5, rtol=1e-5)
    # clusters group similar posters: members are closer to their own centre than to the others
    unit = F.normalize(torch.from_numpy(features[1:][mask[1:]]), dim=1)
    centres = F.normalize(dense[:, 1:][:, torch.from_numpy(mask[1:])] @ unit, dim=1)
    own = belongs[:, 1:][:, torch.from_numpy(mask[1:])].float().argmax(0)
    assert (torch.argmax(unit @ centres.t(), 1) == own).float().mean() > 0.9


# --- the model --------------------------------------------------------------------


@pytest.fixture
def authors(mm_config):
    config, (train, valid, _), model = build_model("MDSRec", {**mm_config, **variant_overrides("MDSRec", "authors")})
    return config, model, next(iter(train))


def _parts(model, batch):
    """The score's terms by hand: fused user against E, each modality against its own space."""
    items = model.item_vectors()
    query, weights = model.forward(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN], items)
    return items, query, weights


def test_authors_spaces_terms_and_weights(authors):
    config, model, batch = authors
    n, d, b = model.n_items, config["hidden_size"], len(batch)
    assert model.spaces == ["image", "text", "id"] and model.modal_items is None  # features only shape graphs
    model.eval()
    with torch.no_grad():
        items, query, weights = _parts(model, batch)
        assert items.tokens.shape == items.candidates.shape == (n, 3, d)
        torch.testing.assert_close(items.candidates[:, 2], model.item_embedding.weight)  # the ID space scores against E
        smoothed = model.id_smoothing.to_dense() @ model.item_embedding.weight
        torch.testing.assert_close(items.tokens[:, 2], smoothed, atol=1e-6, rtol=1e-5)  # and reads C̃E
        image_graph = model.graph_image.to_dense()
        torch.testing.assert_close(items.tokens[:, 0], image_graph @ model.item_embedding.weight, atol=1e-6, rtol=1e-5)
        assert query.shape == (b, 3, d)
        torch.testing.assert_close(weights, torch.tensor([[1.0, 0.1, 0.9]]).expand(b, -1))
        scores = model.full_sort_predict(batch)
        by_hand = (query[:, 0] @ model.item_embedding.weight.t() + 0.1 * query[:, 1] @ items.candidates[:, 0].t()
                   + 0.9 * query[:, 2] @ items.candidates[:, 1].t())
        torch.testing.assert_close(scores, by_hand, atol=1e-4, rtol=1e-4)
        loss = model.calculate_loss(batch)
        target = batch[model.POS_ITEM_ID]
        expected = (F.cross_entropy(query[:, 0] @ model.item_embedding.weight.t(), target)
                    + 0.1 * F.cross_entropy(query[:, 1] @ items.candidates[:, 0].t(), target)
                    + 0.9 * F.cross_entropy(query[:, 2] @ items.candidates[:, 1].t(), target))
        torch.testing.assert_close(loss, expected, atol=1e-4, rtol=1e-4)


def test_authors_evaluation_is_deterministic_and_training_draws_gumbel_noise(authors):
    _, model, batch = authors
    model.eval()
    with torch.no_grad():
        assert torch.equal(model.full_sort_predict(batch), model.full_sort_predict(batch))
        model.train()
        first, second = _parts(model, batch)[1], _parts(model, batch)[1]
    assert not torch.allclose(first, second)


def test_authors_padding_never_changes_a_score(authors):
    _, model, batch = authors
    model.eval()
    batch = batch[torch.nonzero(batch[model.ITEM_SEQ_LEN] <= 10).squeeze(1)]
    seq, longest = batch[model.ITEM_SEQ], int(batch[model.ITEM_SEQ_LEN].max())
    with torch.no_grad():
        scores = model.full_sort_predict(batch)
        batch[model.ITEM_SEQ] = seq[:, :longest]
        trimmed = model.full_sort_predict(batch)
    torch.testing.assert_close(scores, trimmed, atol=1e-5, rtol=1e-5)


def test_authors_gradients_reach_every_part_and_no_frozen_input(authors):
    _, model, batch = authors
    model.train()
    model.calculate_loss(batch).backward()
    parts = {"item_embedding": model.item_embedding, "fusion": model.fusion,
             **{f"{s} branch": branch for s, branch in zip(model.spaces, model.branches)},
             **{f"{s} centres": model.branches[i].centre_stream for i, s in enumerate(model.spaces[:2])}}
    assert model.branches[2].centre_stream is None  # the ID space has no clusters
    for name, module in parts.items():
        grads = [p.grad for p in module.parameters()]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), name
    for name, buffer in model.named_buffers():
        assert not buffer.requires_grad and buffer.grad is None, name


def test_authors_predict_equals_full_sort_columns(authors):
    _, model, batch = authors
    model.eval()
    with torch.no_grad():
        full = model.full_sort_predict(batch)
        batch[model.ITEM_ID] = torch.randint(1, model.n_items, (len(batch),))
        pointwise = model.predict(batch)
    torch.testing.assert_close(pointwise, full[torch.arange(len(batch)), batch[model.ITEM_ID]], atol=1e-5, rtol=1e-5)


def test_authors_modalities_stay_separate(authors):
    """Another image graph moves the image term only; the text term is untouched."""
    _, model, batch = authors
    model.eval()
    with torch.no_grad():
        before = _parts(model, batch)[1]
        identity = to_torch_sparse(sp.identity(model.n_items, format="csr"))
        model.graph_image, model.graph_image_t = identity, identity
        model.train(False)  # drop the cached item vectors
        after = _parts(model, batch)[1]
    assert not torch.allclose(before[:, 1], after[:, 1], atol=1e-4)  # image term moved
    assert torch.equal(before[:, 2], after[:, 2])  # text term untouched


def test_sgp4sr_shares_one_encoder_and_trains_a_step(mm_config):
    config, (train, _, _), model = build_model("SGP4SR", {**mm_config, "hidden_size": 32, "inner_size": 32})
    assert config["shared_encoder"] and len(set(map(id, model.branches))) == 1
    n_params = sum(p.numel() for p in model.parameters())
    assert torch.isfinite(train_step(model, next(iter(train))))
    separate = build_model("MDSRec", {**mm_config, **variant_overrides("MDSRec", "authors"), "hidden_size": 32,
                                      "inner_size": 32, "n_heads": 4, "hidden_act": "relu", "layer_norm_eps": 1e-8})[2]
    assert sum(p.numel() for p in separate.parameters()) > n_params  # three encoders against one


@pytest.mark.parametrize("options, message", [
    ({"fusion": "fixed"}, "fusion: fixed needs fusion_weights"),
    ({"fusion": "id_space", "fusion_weights": {"text": 1.0}}, "missing image"),
    ({"fusion_weights": {"text": 1.0, "image": 1.0}}, "only read by fusion: fixed or id_space"),
    ({"aux_losses": True}, "aux_losses: True needs fixed fusion_weights"),
    ({"id_branch": True, "difference": False}, "id_branch: True needs difference: True"),
    ({"graph_normalization": "sum"}, "graph_normalization"),
])
def test_meaningless_switch_combinations_are_refused(mm_config, options, message):
    with pytest.raises(ConfigError, match=message):
        build_model("MDSRec", {**mm_config, **options})


def test_learned_id_space_weights_start_as_a_plain_sum_and_train(mm_config):
    options = {**mm_config, **variant_overrides("MDSRec", "authors"), "fusion_weights": None, "aux_losses": False}
    _, (train, _, _), model = build_model("MDSRec", options)
    assert torch.equal(model.fusion.space_weights(), torch.ones(3))
    batch = next(iter(train))
    model.calculate_loss(batch).backward()
    assert model.fusion.learned.grad is not None and model.fusion.learned.grad.abs().sum() > 0
    query, weights = _parts(model, batch)[1:]
    assert query.shape[1] == 1 and torch.equal(weights, torch.ones(len(batch), 1))  # the fused term alone


def test_centre_attention_over_the_history_is_a_distribution_over_valid_positions(authors):
    _, model, batch = authors
    model.eval()
    with torch.no_grad():
        attention = model.history_attention(batch)
    assert set(attention) == {"image", "text"}  # the ID space has no centres
    valid = batch[model.ITEM_SEQ] != 0
    for weights in attention.values():
        torch.testing.assert_close(weights.sum(1), torch.ones(len(batch)))
        assert (weights[~valid] == 0).all() and (weights >= 0).all()
    assert not torch.allclose(attention["image"], attention["text"])

