"""Model lookup (plugin first, then RecBole), config precedence, the plugin's yaml as package
data, data roots, and configs rebuilt from stored plain options."""

import pytest
import yaml

from recbole_mdsrec import properties, registry, roots
from recbole_mdsrec.config import Config, data_root
from recbole_mdsrec.errors import ConfigError, DataError
from recbole_mdsrec.schema import config_hash, plain_config


def test_recbole_models_resolve():
    from recbole.model.sequential_recommender import GRU4Rec, SASRec

    assert registry.get_model("SASRec") is SASRec
    assert registry.get_model("GRU4Rec") is GRU4Rec


def test_plugin_model_wins_over_recbole_name(monkeypatch):
    monkeypatch.setitem(registry.PLUGIN_MODELS, "SASRec", "recbole.model.sequential_recommender.gru4rec:GRU4Rec")
    assert registry.get_model("SASRec").__name__ == "GRU4Rec"


def test_model_name_resolves_back_to_the_class():
    for name in ("MDSRec", "SASRecF", "RecBole.SASRecF", "SASRec", "Pop"):
        assert registry.model_name(registry.get_model(name)) == name


def test_unknown_model_lists_known_names():
    with pytest.raises(ConfigError) as info:
        registry.get_model("SASrec")
    message = str(info.value)
    assert "'SASrec'" in message and "SASRec" in message and "BERT4Rec" in message


def test_unregistered_dataset_class_is_an_error():
    class Model:
        dataset_class = "NoSuchDataset"

    with pytest.raises(ConfigError, match="NoSuchDataset"):
        registry.get_dataset_class(Model)


def test_the_plugin_yaml_is_package_data():
    assert properties.path("overall.yaml").is_file() and properties.path("model", "MDSRec.yaml").is_file()
    for name in registry.PLUGIN_MODELS:
        assert properties.path("model", f"{name}.yaml").is_file(), name


@pytest.mark.shared_data
def test_a_plugin_model_without_its_yaml_is_an_error_naming_the_file(quick_config):
    from recbole_mdsrec.models.sasrecf import SASRecF

    no_yaml = type("NoYamlRec", (SASRecF,), {"__module__": "recbole_mdsrec.models.no_yaml"})
    with pytest.raises(ConfigError, match=r"model/NoYamlRec\.yaml is missing"):
        Config(no_yaml, "ml-slice", config_dict=quick_config)


@pytest.mark.shared_data
def test_precedence_plugin_yaml_then_file_then_command_line(tmp_path, quick_config):
    base = {k: v for k, v in quick_config.items() if k != "MAX_ITEM_LIST_LENGTH"}
    plugin_default = Config("SASRec", "ml-slice", config_dict=base)
    assert plugin_default["MAX_ITEM_LIST_LENGTH"] == 50  # properties/overall.yaml
    assert plugin_default["metrics"] == ["Recall", "NDCG", "MRR"]
    assert plugin_default["eval_args"]["split"] == {"LS": "valid_and_test"}

    user_file = tmp_path / "user.yaml"
    user_file.write_text(yaml.safe_dump({"MAX_ITEM_LIST_LENGTH": 30, "learning_rate": 0.01}))
    from_file = Config("SASRec", "ml-slice", [str(user_file)], base)
    assert from_file["MAX_ITEM_LIST_LENGTH"] == 30

    from_cmd = Config("SASRec", "ml-slice", [str(user_file)], base, cmd_args={"MAX_ITEM_LIST_LENGTH": "20"})
    assert from_cmd["MAX_ITEM_LIST_LENGTH"] == 20
    assert from_cmd["learning_rate"] == 0.01


def test_roots_follow_option_then_environment_then_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for variable in (roots.DATA_ROOT_ENV, roots.RAW_ROOT_ENV, roots.RESULTS_ROOT_ENV):
        monkeypatch.delenv(variable, raising=False)
    assert roots.data_root() == tmp_path / "dataset" and roots.results_root() == tmp_path / "results"
    assert roots.raw_root() == (tmp_path / ".." / "shared" / "datasets" / "raw").absolute()
    monkeypatch.setenv(roots.DATA_ROOT_ENV, str(tmp_path / "env-data"))
    monkeypatch.setenv(roots.RESULTS_ROOT_ENV, "relative-results")
    assert roots.data_root() == tmp_path / "env-data" and roots.results_root() == tmp_path / "relative-results"
    assert roots.data_root(tmp_path / "option") == tmp_path / "option"


@pytest.mark.shared_data
def test_config_takes_its_data_root_from_the_environment(ml100k_slice, monkeypatch, quick_config):
    monkeypatch.setenv(roots.DATA_ROOT_ENV, str(ml100k_slice))
    config = Config("SASRec", "ml-slice", config_dict={k: v for k, v in quick_config.items() if k != "data_path"})
    assert data_root(config) == str(ml100k_slice) and config["data_path"] == str(ml100k_slice / "ml-slice")


@pytest.mark.shared_data
@pytest.mark.parametrize("model", ["MDSRec", "SASRec", "RecBole.SASRecF"])
def test_a_config_rebuilt_from_plain_options_is_the_same_run(mm_config, model):
    config = Config(model, "ml-mm-slice", config_dict={**mm_config, "learning_rate": 0.0005})
    rebuilt = Config.from_plain(plain_config(config), model=registry.model_name(config.model_class))
    assert rebuilt.model_class is config.model_class
    assert plain_config(rebuilt) == plain_config(config)
    assert config_hash(plain_config(rebuilt)) == config_hash(plain_config(config))
    moved = Config.from_plain(plain_config(config), model=model, cmd_args={"data_path": "/elsewhere", "epochs": "7"})
    assert moved["data_path"] == "/elsewhere/ml-mm-slice" and moved["epochs"] == 7


@pytest.mark.shared_data
def test_stored_options_that_do_not_come_back_are_refused(mm_config):
    plain = plain_config(Config("SASRec", "ml-mm-slice", config_dict=mm_config))
    plain["topk"] = 10  # RecBole turns an int into [10]: not what was stored
    with pytest.raises(DataError, match="topk"):
        Config.from_plain(plain)
