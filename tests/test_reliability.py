"""Checkpoints, exact resume, reproducibility, recommendations and bad input."""

import numpy as np
import pytest
import torch

from helpers import fast_options, interrupted_after_first_epoch, table_rows
from recbole_mdsrec import registry
from recbole_mdsrec.cli import run as cli
from recbole_mdsrec.errors import DataError
from recbole_mdsrec.schema import SCHEMA_VERSION
from recbole_mdsrec.training import runner
from recbole_mdsrec.training.checkpoints import last_state_path, load_checkpoint
from recbole_mdsrec.training.recommend import Recommender

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def trained(mm_slice, tmp_path_factory):
    """MDSRec trained for 2 epochs on the real slice: the uninterrupted reference run."""
    options = _options(mm_slice, tmp_path_factory.mktemp("trained"), epochs=2)
    return options, runner.run("MDSRec", "ml-mm-slice", config_dict=options)


def _options(mm_slice, folder, **extra):
    return fast_options(mm_slice, folder, modalities=["image", "text"], train_batch_size=512, seed=5, **extra)


def test_interrupted_training_resumes_to_the_same_result(trained, mm_slice, tmp_path, monkeypatch):
    options, reference = trained
    state = interrupted_after_first_epoch(lambda: runner.run(
        "MDSRec", "ml-mm-slice", config_dict={**options, "checkpoint_dir": str(tmp_path)}), monkeypatch)
    first_epoch = torch.load(state, weights_only=True)["timing"]["epoch_seconds"]
    resumed = runner.run(resume=str(state))
    assert resumed.epochs == 2 and resumed.epoch_seconds[:1] == first_epoch  # epoch 0 not run again
    assert resumed.train_losses == pytest.approx(reference.train_losses, rel=1e-6)
    assert resumed.test_result == reference.test_result


def test_checkpoints_are_plain_data_with_their_schema_version(trained):
    _, reference = trained
    for path in (reference.checkpoint, last_state_path(reference.checkpoint)):
        state = torch.load(path, weights_only=True)  # no pickled object anywhere
        assert state["schema_version"] == SCHEMA_VERSION and state["model"] == "MDSRec"
        assert isinstance(state["config"], dict) and state["config"]["dataset"] == "ml-mm-slice"


def legacy_state(path) -> dict:
    """A checkpoint as RecBole (and this plugin before plain options) wrote it: the live
    Config pickled, numpy's RNG state as its tuple, MDSRec's weights under their old names,
    and no feature_normalization (added after the first results)."""
    from recbole_mdsrec.config import Config

    state = torch.load(path, weights_only=True)
    config = Config.from_plain(state["config"], model=state["model"])
    del config.final_config_dict["feature_normalization"]
    legacy = {k: v for k, v in state.items() if k not in ("schema_version", "model")}
    legacy["config"] = config
    legacy["state_dict"] = {k.replace("modal_items.projections.", "projections."): v for k, v in state["state_dict"].items()}
    if "rng" in state:
        n = state["rng"]["numpy"]
        legacy["rng"] = {**state["rng"], "numpy": (n["kind"], n["keys"].numpy().astype(np.uint32), n["position"],
                                                   n["has_gauss"], n["cached_gaussian"])}
    return legacy


def test_a_finished_legacy_state_resumes_to_the_same_test(trained, tmp_path):
    # feature_normalization came after runs whose states lacked it, and their resume failed.
    # The run had finished: resuming it must test the best model, not overwrite it.
    _, reference = trained
    state = legacy_state(last_state_path(reference.checkpoint))
    assert any(k.startswith("projections.") for k in state["state_dict"])
    older = tmp_path / "older.pth.last"
    torch.save(state, older, pickle_protocol=4)
    resumed = runner.run(resume=str(older))
    assert resumed.test_result == reference.test_result
    # The same when it had stopped early (with epochs to spare): no epoch is added.
    state["cur_step"] = state["config"]["stopping_step"] + 1
    torch.save(state, older, pickle_protocol=4)
    stopped = runner.run(resume=str(older), cmd_args={"epochs": 5})
    assert stopped.epochs == 2 and stopped.test_result == reference.test_result
    best = tmp_path / "older.pth"
    torch.save(legacy_state(reference.checkpoint), best, pickle_protocol=4)
    assert Recommender(best).config["feature_normalization"] == "none"
    assert load_checkpoint(best)["config"]["feature_normalization"] == "none"


def test_same_seed_gives_identical_metrics(trained, mm_slice, tmp_path):
    options, reference = trained
    again = runner.run("MDSRec", "ml-mm-slice", config_dict={**options, "checkpoint_dir": str(tmp_path)})
    assert again.test_result == reference.test_result
    assert again.train_losses == pytest.approx(reference.train_losses, rel=1e-6)  # threaded sums


def test_recommendations_from_a_checkpoint_alone(trained):
    _, reference = trained
    recommender = Recommender(reference.checkpoint)
    history = recommender.user_history("1")
    items = recommender.recommend(history, topk=10)
    assert [r.rank for r in items] == list(range(1, 11))
    scores = [r.score for r in items]
    assert scores == sorted(scores, reverse=True)
    tokens = recommender.dataset.field2id_token["item_id"]
    assert not {r.item for r in items} & {tokens[i] for i in history}
    from_sequence = recommender.recommend(recommender.item_ids([tokens[i] for i in history]), topk=10)
    assert [r.item for r in from_sequence] == [r.item for r in items]
    with pytest.raises(DataError, match="not in dataset"):
        recommender.user_history("no-such-user")
    with pytest.raises(DataError, match="trained with dataset 'ml-mm-slice'"):
        Recommender(reference.checkpoint, dataset="hm")


def _cli(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_recommend_prints_a_ranked_table(trained, capsys):
    _, reference = trained
    code, out, _ = _cli(capsys, "--recommend", f"--checkpoint={reference.checkpoint}", "--user=1", "--topk=5")
    assert code == 0
    rows = [row for row in table_rows(out) if row[0].isdigit()]
    assert [row[0] for row in rows] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize("argv, expected", [
    (["--model=SASRec", "--dataset=ml-100k", "--epochs", "3"], "--key=value"),
    (["--model=NoSuchModel"], "Unknown model 'NoSuchModel'"),
    (["--model=SASRec", "--dataset=no-such-data"], "prepared dataset"),
    (["--model=SASRec", "--dataset=ml-100k", "--train_neg_sample_args={'distribution': 'uniform'}"], "loss_type=CE"),
    (["--model=SASRec", "--dataset=ml-100k", "--loss_type=BPR"], "needs sampled negatives"),
    (["--recommend", "--checkpoint=no/such.pth", "--user=1"], "does not exist"),
    (["--recommend", "--user=1"], "needs --checkpoint"),
    (["--model=MDSRec", "--variant=wo_everything"], "Unknown variant"),
])
def test_bad_input_gets_one_paragraph_and_exit_code_2(capsys, argv, expected):
    code, _, err = _cli(capsys, *argv)
    assert code == 2
    assert expected in err and ("Fix" in err or "Known" in err)
    assert "Traceback" not in err


def test_corrupt_checkpoint_and_missing_modality(capsys, tmp_path, mm_slice):
    corrupt = tmp_path / "x.pth"
    corrupt.write_bytes(b"\x00" * 64)
    code, _, err = _cli(capsys, "--recommend", f"--checkpoint={corrupt}", "--user=1")
    assert code == 2 and "cannot be read" in err
    code, _, err = _cli(capsys, "--model=MDSRec", "--dataset=ml-mm-slice", f"--data_path={mm_slice}",
                        "--modalities=['image','audio']", "--gpu_id=", "--state=WARNING")
    assert code == 2 and "audio" in err and "Fix" in err


def test_resume_needs_a_training_state_not_a_best_checkpoint(trained):
    _, reference = trained
    assert last_state_path(reference.checkpoint).is_file()
    with pytest.raises(DataError, match=r"\.last"):
        runner.run(resume=reference.checkpoint)


@pytest.mark.parametrize("model", sorted(registry.PLUGIN_MODELS))
def test_every_plugin_model_reloads_from_its_checkpoint_alone(mm_slice, tmp_path, model):
    """The checkpoint's own config rebuilds data, features and graphs; the reloaded model
    reproduces the test metrics of the run that saved it."""
    from recbole.trainer import Trainer

    from recbole_mdsrec.config import Config
    from recbole_mdsrec.training.runner import build_data, build_model

    result = runner.run(model, "ml-mm-slice", config_dict=_options(mm_slice, tmp_path, epochs=1))
    state = load_checkpoint(result.checkpoint)
    config = Config.from_plain(state["config"], model=state["model"])
    _, (train_data, _, test_data) = build_data(config)
    reloaded = build_model(config, train_data)
    reloaded.load_state_dict(state["state_dict"])
    assert Trainer(config, reloaded).evaluate(test_data, load_best_model=False) == result.test_result
