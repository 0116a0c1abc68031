"""The feature-aware baselines (GRU4RecF, SASRecF, FDSA, MISSRec, MMMLP) and UniSRec on real
MovieLens, H&M (dense features) and Amazon (semantic-ID codes) slices, and the names of
RecBole's own versions."""

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from helpers import CODES_SLICE, HM_SLICE, MM_SLICE, build_model
from recbole_mdsrec import registry
from recbole_mdsrec.config import Config
from recbole_mdsrec.training.checkpoints import last_state_path
from recbole_mdsrec.training.runner import run

pytestmark = pytest.mark.shared_data

FEATURE_MODELS = ("GRU4RecF", "SASRecF", "FDSA", "MISSRec", "MMMLP")
MODELS = (*FEATURE_MODELS, "UniSRec")
# the items' own features are candidates' features too: their column moves for every user
FEATURE_CANDIDATES = {"MISSRec"}
TRAIN_BATCHES = 2
SMALL_BATCHES = {"train_batch_size": 256}  # a CPU step costs ~0.5 s at 512 on a busy 2-core machine


@pytest.fixture
def ml_config(mm_config) -> dict:
    return {**mm_config, **SMALL_BATCHES}


@pytest.fixture
def hm_config(ml_config, hm_slice) -> dict:
    return {**ml_config, "data_path": str(hm_slice)}


@pytest.fixture
def codes_config(ml_config, codes_slice) -> dict:
    return {**ml_config, "data_path": str(codes_slice)}


CONFIG_OF = {MM_SLICE: "ml_config", HM_SLICE: "hm_config", CODES_SLICE: "codes_config"}


def _train_a_few_batches(model, train_data) -> list[float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for step, batch in enumerate(train_data):
        if step == TRAIN_BATCHES:
            break
        optimizer.zero_grad()
        loss = model.calculate_loss(batch)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _assert_predict_matches_full_sort(model, batch):
    model.eval()
    with torch.no_grad():
        full = model.full_sort_predict(batch)
        batch[model.ITEM_ID] = torch.randint(1, model.n_items, (len(batch),))
        pointwise = model.predict(batch)
    assert full.shape == (len(batch), model.n_items)
    assert torch.allclose(pointwise, full[torch.arange(len(batch)), batch[model.ITEM_ID]], atol=1e-5)


@pytest.mark.parametrize("dataset", [MM_SLICE, HM_SLICE, CODES_SLICE])
@pytest.mark.parametrize("name", MODELS)
def test_trains_and_predict_matches_full_sort(name, dataset, request):
    options = request.getfixturevalue(CONFIG_OF[dataset])
    _, (train, _, _), model = build_model(name, options, dataset)
    assert type(model) is registry.get_model(name) and type(model).__module__.startswith("recbole_mdsrec.")
    losses = _train_a_few_batches(model, train)
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    _assert_predict_matches_full_sort(model, next(iter(train)))


@pytest.mark.parametrize("name", MODELS)
def test_one_modality_alone_trains(name, ml_config):
    """As on microlens-50k, which has titles only: the model sees the text modality alone."""
    _, (train, _, _), model = build_model(name, {**ml_config, "modalities": ["text"]}, MM_SLICE)
    assert model.modal_items.modalities == ["text"]
    losses = _train_a_few_batches(model, train)
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    _assert_predict_matches_full_sort(model, next(iter(train)))


def test_hm_slice_has_products_without_text(hm_config):
    _, (train, _, _), _ = build_model("SASRecF", hm_config, HM_SLICE)
    masks = train.dataset.modal_masks
    assert not masks["text"][1:].all() and masks["text"][1:].any()
    assert masks["image"][1:].any()


def test_runner_trains_one_epoch(hm_config):
    """The whole run, including saving the best model and reloading it for the test."""
    result = run("FDSA", HM_SLICE, config_dict=hm_config)
    assert result.epochs == 1 and result.train_losses[0] > 0
    assert 0.0 <= result.test_result["ndcg@10"] <= 1.0


@pytest.mark.parametrize("name", ["MISSRec", "MMMLP"])
def test_reloaded_checkpoint_reproduces_the_test_metrics(name, codes_config):
    """A fresh model from the saved best checkpoint (MISSRec: with the interest clusters it
    was evaluated with, not re-clustered at build time) tests exactly as the trained one."""
    result = run(name, CODES_SLICE, config_dict={**codes_config, "epochs": 2})  # epoch 1 re-clusters
    reloaded = run(resume=str(last_state_path(result.checkpoint)))
    assert reloaded.epochs == result.epochs == 2
    assert reloaded.test_result == result.test_result


@pytest.mark.parametrize("name", FEATURE_MODELS)
def test_feature_aware_scores_follow_the_features(name, ml_config):
    """Changing one item's image features moves exactly the users whose sequence holds it
    (and, where features make the candidates, that item's own score for every user)."""
    _, (train, _, _), model = build_model(name, ml_config)
    model.eval()
    batch = next(iter(train))
    item = int(batch[model.ITEM_SEQ][0, 0])
    holds = (batch[model.ITEM_SEQ] == item).any(dim=1)
    assert not holds.all(), "the batch must have users without the item"
    others = torch.arange(model.n_items) != item
    features = model.modal_items.features("image")
    with torch.no_grad():
        before = model.full_sort_predict(batch)
        features[item] += 5.0 * torch.randn_like(features[item])
        model.train(False)  # drop item vectors a model keeps across evaluation batches
        after = model.full_sort_predict(batch)
    assert not torch.allclose(before[holds], after[holds], atol=1e-4)
    assert torch.equal(before[~holds][:, others], after[~holds][:, others])
    own_column_moves = not torch.allclose(before[~holds][:, item], after[~holds][:, item], atol=1e-6)
    assert own_column_moves == (name in FEATURE_CANDIDATES)


@pytest.mark.parametrize("name", ["MISSRec", "MMMLP"])
def test_gradients_reach_every_part_and_never_the_frozen_features(name, codes_config):
    _, (train, _, _), model = build_model(name, codes_config, CODES_SLICE)
    model.train()
    model.calculate_loss(next(iter(train))).backward()
    for parameter_name, parameter in model.named_parameters():
        if "missing" in parameter_name:  # the vector of items lacking a modality: none in this slice lack one
            continue
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, parameter_name
    for buffer_name, buffer in model.named_buffers():
        assert not buffer.requires_grad and buffer.grad is None, buffer_name


def test_missrec_interests_are_the_sets_of_their_items_clusters(codes_config):
    _, (train, _, _), model = build_model("MISSRec", codes_config, CODES_SLICE)
    clusters = model.interests
    n_vectors = sum(int(model.modal_items.mask(m)[1:].sum()) for m in model.modalities)
    assert clusters.centroids.shape == (1 + -(-n_vectors // 2), model.hidden_size)  # ceil(0.5 T) + padding row
    modal = model.modal_vectors().detach()
    for m, lookup in zip(model.modalities, clusters.lookup):
        items = torch.nonzero(model.modal_items.mask(m)).squeeze(1)
        items = items[items != 0]
        # each item's cluster is its nearest centroid
        distances = torch.cdist(modal[model.modalities.index(m), items], clusters.centroids[1:])
        assert (lookup[items] - 1 == distances.argmin(1)).float().mean() > 0.99
    batch = next(iter(train))
    ids, valid = clusters.interest_set(batch[model.ITEM_SEQ])
    for row in range(5):
        seq = batch[model.ITEM_SEQ][row]
        expected = set(clusters.lookup[:, seq[seq != 0]].flatten().tolist()) - {0}
        assert set(ids[row][valid[row]].tolist()) == expected and int(valid[row].sum()) == len(expected)
    before = clusters.centroids.clone()
    with torch.no_grad():
        model.modal_items.projections["text"].net.weight.mul_(2.0)
    model.before_train_epoch(1)  # the trainer re-clusters before each epoch
    assert not torch.equal(before, clusters.centroids)


def test_mmmlp_modal_layers_feed_each_application_into_the_next(ml_config):
    _, (train, _, _), once = build_model("MMMLP", {**ml_config, "modal_layers": 1})
    _, _, twice = build_model("MMMLP", {**ml_config, "modal_layers": 2})
    twice.load_state_dict(once.state_dict())
    branch_once, branch_twice = once.modal_branches["text"].eval(), twice.modal_branches["text"].eval()
    x = torch.randn(3, once.max_seq_length, once.hidden_size)
    with torch.no_grad():
        torch.testing.assert_close(branch_twice(x), branch_once.block(branch_once(x)))


def test_bpr_option_trains(ml_config):
    negatives = {"distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False, "candidate_num": 0}
    options = {**ml_config, "loss_type": "BPR", "train_neg_sample_args": negatives}
    _, (train, _, _), model = build_model("SASRecF", options)
    assert model.scoring.loss_type == "BPR"
    assert all(torch.isfinite(torch.tensor(_train_a_few_batches(model, train))))


def _unisrec(mode: str, options: dict, dataset: str = MM_SLICE):
    return build_model("UniSRec", {**options, "unisrec_mode": mode}, dataset)


def test_unisrec_inductive_has_no_id_parameters(ml_config, hm_config):
    _, _, ml_model = _unisrec("inductive", ml_config)
    _, _, hm_model = _unisrec("inductive", hm_config, HM_SLICE)
    embeddings = [name for name, m in ml_model.named_modules() if isinstance(m, nn.Embedding)]
    assert embeddings == ["encoder.position_embedding"]
    # Both slices have 384-d text: with no per-item parameter the models are the same size.
    assert ml_model.n_items != hm_model.n_items
    assert sum(p.numel() for p in ml_model.parameters()) == sum(p.numel() for p in hm_model.parameters())
    _, _, transductive = _unisrec("transductive", ml_config)
    assert transductive.item_embedding.weight.shape[0] == transductive.n_items


def _copy_text(model, source: int, target: int):
    features, mask = model.modal_items.features("text"), model.modal_items.mask("text")
    features[target] = features[source]
    mask[target] = mask[source]


def test_unisrec_inductive_knows_items_by_text_only(ml_config):
    _, (train, _, _), model = _unisrec("inductive", ml_config)
    model.eval()
    batch = next(iter(train))
    seq = batch[model.ITEM_SEQ]
    a = int(seq[0, 0])
    b = next(i for i in range(1, model.n_items) if i != a and not (seq == i).any())
    with torch.no_grad():
        _copy_text(model, a, b)
        scores = model.full_sort_predict(batch)
        batch[model.ITEM_SEQ] = torch.where(seq == a, b, seq)  # the same text under another id
        renamed = model.full_sort_predict(batch)
    assert torch.allclose(scores[:, a], scores[:, b], atol=1e-6)
    assert torch.allclose(scores, renamed, atol=1e-5)


def test_unisrec_transductive_tells_same_text_items_apart(ml_config):
    _, (train, _, _), model = _unisrec("transductive", ml_config)
    model.eval()
    with torch.no_grad():
        _copy_text(model, 1, 2)
        scores = model.full_sort_predict(next(iter(train)))
    assert not torch.allclose(scores[:, 1], scores[:, 2], atol=1e-4)


def test_recbole_prefix_names_recbole_original():
    from recbole.model.sequential_recommender import FDSA, GRU4RecF, SASRecF

    for original in (GRU4RecF, SASRecF, FDSA):
        assert registry.get_model(f"RecBole.{original.__name__}") is original
        assert registry.get_model(original.__name__) is not original
    assert registry.get_model("RecBole.SASRec") is registry.get_model("SASRec")


def test_recbole_original_keeps_recbole_defaults(quick_config):
    """The plugin's yaml of the same name is read too; it must not change RecBole's values."""
    import recbole

    for name in ("GRU4RecF", "SASRecF", "FDSA"):
        config = Config(f"RecBole.{name}", "ml-slice", config_dict=quick_config)
        assert config.model_class is registry.recbole_models()[name]
        recbole_yaml = Path(recbole.__file__).parent / "properties" / "model" / f"{name}.yaml"
        defaults = yaml.load(recbole_yaml.read_text(), Loader=config.yaml_loader)  # RecBole's: 1e-12 is a float
        for key, value in defaults.items():
            if key not in quick_config:
                assert config[key] == value, (name, key)


def test_recbole_original_runs_under_its_name(quick_config):
    options = {
        **quick_config,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"], "item": ["item_id", "release_year"]},
        "selected_features": ["release_year"],
        "numerical_features": ["release_year"],  # RecBole embeds a float field only when told so
    }
    result = run("RecBole.SASRecF", "ml-slice", config_dict=options, saved=False)
    assert result.config.model_class is registry.recbole_models()["SASRecF"]
    assert result.epochs == 1 and 0.0 <= result.test_result["ndcg@10"] <= 1.0
