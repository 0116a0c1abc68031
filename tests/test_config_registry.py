"""Model lookup (plugin first, then RecBole) and config precedence."""

import pytest
import yaml

from recbole_mdsrec import registry
from recbole_mdsrec.config import Config, data_root, set_data_root
from recbole_mdsrec.errors import ConfigError


def test_recbole_models_resolve():
    from recbole.model.sequential_recommender import GRU4Rec, SASRec

    assert registry.get_model("SASRec") is SASRec
    assert registry.get_model("GRU4Rec") is GRU4Rec


def test_plugin_model_wins_over_recbole_name(monkeypatch):
    monkeypatch.setitem(registry.PLUGIN_MODELS, "SASRec", "recbole.model.sequential_recommender.gru4rec:GRU4Rec")
    assert registry.get_model("SASRec").__name__ == "GRU4Rec"


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


def test_data_root_is_what_the_command_line_gave_and_can_be_moved(tmp_path, quick_config):
    config = Config("SASRec", "ml-slice", config_dict=quick_config)
    root = quick_config["data_path"]
    assert config["data_path"] == f"{root}/ml-slice" and data_root(config) == root
    set_data_root(config, str(tmp_path / "moved"))  # as ``--resume=... --data_path=...`` does
    assert config["data_path"] == str(tmp_path / "moved" / "ml-slice")
    assert data_root(config) == str(tmp_path / "moved")
