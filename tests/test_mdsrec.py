"""MDSRec's behaviour on a real MovieLens slice with real poster and plot features."""

import pytest
import torch

from helpers import build_model, train_step
from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.training.runner import run
from recbole_mdsrec.variants import variant_overrides, variants_of

pytestmark = pytest.mark.shared_data


@pytest.fixture
def built(mm_config):
    config, (train, valid, test), model = build_model("MDSRec", mm_config)
    batch = next(iter(train))
    return config, model, batch, valid


def _users(model, batch):
    return model.forward(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])


def test_shapes_of_every_intermediate(built):
    config, model, batch, _ = built
    n, d, b = model.n_items, config["hidden_size"], len(batch)
    assert model.modal_item_vectors().shape == (n, 2, d)
    items = model.item_vectors()
    assert items.tokens.shape == items.candidates.shape == (n, 2, d)
    users, weights = _users(model, batch)
    assert users.shape == (b, 2, d) and weights.shape == (b, 2)
    assert torch.allclose(weights.sum(-1), torch.ones(b))
    assert getattr(model, "graph_image").shape == (n, n)
    model.eval()
    assert model.full_sort_predict(batch).shape == (b, n)


def test_padding_never_changes_a_score(built):
    _, model, batch, _ = built
    model.eval()
    batch = batch[torch.nonzero(batch[model.ITEM_SEQ_LEN] <= 10).squeeze(1)]
    assert len(batch) > 0, "the slice must have short (padded) sequences"
    seq, longest = batch[model.ITEM_SEQ], int(batch[model.ITEM_SEQ_LEN].max())
    with torch.no_grad():
        scores = model.full_sort_predict(batch)
        batch[model.ITEM_SEQ] = seq[:, :longest]  # drop padding columns
        trimmed = model.full_sort_predict(batch)
    assert torch.allclose(scores, trimmed, atol=1e-5)


def test_gradients_reach_every_trainable_part_and_no_frozen_input(built):
    _, model, batch, _ = built
    model.train()
    model.calculate_loss(batch).backward()
    parts = {
        "item_embedding": model.item_embedding,
        "image projection": model.modal_items.projections["image"],
        "text projection": model.modal_items.projections["text"],
        "image encoder": model.branches[0],
        "text encoder": model.branches[1],
        "fusion": model.fusion,
    }
    for name, module in parts.items():
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name
    for name, buffer in model.named_buffers():
        assert not buffer.requires_grad and buffer.grad is None, name


def test_predict_equals_full_sort_columns(built):
    _, model, batch, _ = built
    model.eval()
    with torch.no_grad():
        full = model.full_sort_predict(batch)
        batch[model.ITEM_ID] = torch.randint(1, model.n_items, (len(batch),))
        pointwise = model.predict(batch)
    expected = full[torch.arange(len(batch)), batch[model.ITEM_ID]]
    assert torch.allclose(pointwise, expected, atol=1e-5)


def test_modalities_stay_separate(built):
    """Perturbing an item's image features moves the image branch only."""
    _, model, batch, _ = built
    model.eval()
    item = int(batch[model.ITEM_SEQ][0, 0])
    with torch.no_grad():
        before, _ = _users(model, batch)
        features = model.modal_items.features("image")
        features[item] += 5.0 * torch.randn_like(features[item])
        model.train(False)  # drop the cached item vectors
        after, _ = _users(model, batch)
    assert not torch.allclose(before[0, 0], after[0, 0], atol=1e-4)  # image branch moved
    assert torch.equal(before[:, 1], after[:, 1])  # text branch untouched


def test_unknown_switch_value_lists_allowed_values(mm_config):
    with pytest.raises(ConfigError, match="'gate'.*'concat'"):
        build_model("MDSRec", {**mm_config, "fusion": "sum"})


@pytest.mark.parametrize("variant", sorted(variants_of("MDSRec")))
def test_each_ablation_preset_trains_a_step(mm_config, variant):
    overrides = variant_overrides("MDSRec", variant)
    config, (train, _, _), model = build_model("MDSRec", {**mm_config, **overrides})
    assert torch.isfinite(train_step(model, next(iter(train))))
    n_spaces = (1 if not config["difference"] else len(config["modalities"])) + int(config["id_branch"])
    assert model.item_vectors().candidates.shape[1] == n_spaces
    assert hasattr(model, "graph_image") == (config["n_graph_layers"] > 0 and "image" in config["modalities"])


def test_unknown_variant_lists_known_ones():
    with pytest.raises(ConfigError, match="wo_rgc"):
        variant_overrides("MDSRec", "wo_everything")


def test_training_lowers_loss_and_beats_popularity(mm_config):
    options = {**mm_config, "epochs": 4, "learning_rate": 0.003}
    mdsrec = run("MDSRec", "ml-mm-slice", config_dict=options)
    pop = run("Pop", "ml-mm-slice", config_dict={**options, "epochs": 1})
    losses = mdsrec.train_losses
    assert losses[-1] < losses[0]
    assert mdsrec.best_valid_result["ndcg@10"] > pop.best_valid_result["ndcg@10"]


def test_cooccurrence_is_built_once_per_split_and_shared(mm_config, monkeypatch):
    from recbole_mdsrec.graphs import modal
    from recbole_mdsrec.graphs.behavior import cooccurrence
    from recbole_mdsrec.graphs.spec import GraphSpec

    options = {**mm_config, "id_branch": True, "behavior_weighting": "inverse_distance"}
    config, (loader, _, _), model = build_model("MDSRec", options)
    train = loader.dataset
    spec = GraphSpec(weighting="inverse_distance", window=config["behavior_window"])
    expected = cooccurrence(train.training_sequences(), train.item_num, window=spec.window, weighting=spec.weighting)

    def rebuilt(*args, **kwargs):
        raise AssertionError("the co-occurrence was rebuilt although its cache holds it")

    monkeypatch.setattr(modal, "cooccurrence", rebuilt)
    cached = modal.training_cooccurrence(train, spec)
    assert (cached != expected).nnz == 0
    # A second model on the same split (another seed of a grid) reads the smoothing and graphs from the cache.
    again = build_model("MDSRec", {**options, "seed": 12})[2]
    assert torch.equal(again.id_smoothing.to_dense(), model.id_smoothing.to_dense())
