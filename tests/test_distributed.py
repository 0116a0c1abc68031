"""Distributed training on gloo (two CPU processes), through RecBole's distributed mode and the
plugin's trainer."""

import math
import socket

import pytest
import torch
from torch import nn

from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.training import distributed
from recbole_mdsrec.training.distributed import DistributedSettings

pytestmark = pytest.mark.shared_data


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return str(s.getsockname()[1])


def test_two_processes_train_and_test_like_one(quick_config):
    from recbole_mdsrec.training.runner import RunRequest, run

    single = run("SASRec", "ml-slice", config_dict=quick_config)
    result = distributed.launch(RunRequest("SASRec", "ml-slice", config_dict=quick_config),
                                DistributedSettings(nproc=2, port=free_port()))
    assert result is not None and result.epochs == 1
    assert set(result.test_result) == set(single.test_result)
    for value in result.test_result.values():
        assert math.isfinite(value) and 0.0 <= value <= 1.0
    # Same global batch and schedule; different dropout streams and shards, so not equal:
    # within a loose band of the one-process run on this 120-user slice.
    assert abs(result.test_result["recall@20"] - single.test_result["recall@20"]) < 0.1
    assert result.checkpoint and torch.load(result.checkpoint, weights_only=True)["state_dict"]


def _train_one_epoch(local_rank: int, options: dict, settings: DistributedSettings, out: str) -> None:
    """One rank: build SASRec and the plugin trainer in distributed mode, note the users of
    this rank's share of the epoch, train the epoch, save the weights."""
    from recbole_mdsrec.config import Config
    from recbole_mdsrec.training.runner import build

    torch.set_num_threads(1)
    config = Config("SASRec", "ml-slice", config_dict={**options, **settings.as_options(), "local_rank": local_rank})
    _, (train_data, _, _), model, trainer = build(config)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    train_data.sampler.set_epoch(0)  # the shard _train_epoch will iterate
    rows = torch.cat([torch.stack([batch[model.USER_ID], batch[model.POS_ITEM_ID], batch[model.ITEM_SEQ_LEN]], dim=1)
                      for batch in train_data])  # a training row: its user, target and position
    trainer._train_epoch(train_data, 0)
    torch.save({"initial": initial, "trained": model.state_dict(), "rows": rows}, f"{out}/rank{local_rank}.pt")
    torch.distributed.destroy_process_group()


def test_gradients_are_synchronised_across_ranks(quick_config, tmp_path):
    """Two ranks train on different shards of every batch; their weights start equal (DDP
    broadcasts rank 0's) and are bit-identical after the epoch only if the gradients were
    averaged between them."""
    settings = DistributedSettings(nproc=2, port=free_port())
    options = {**quick_config, "train_batch_size": 256}
    torch.multiprocessing.spawn(_train_one_epoch, args=(options, settings, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    shards = [set(map(tuple, rank["rows"].tolist())) for rank in ranks]
    # Different rows of every batch (the sampler repeats at most nproc - 1 rows to even the shards).
    assert min(map(len, shards)) > 100 and len(shards[0] & shards[1]) <= 1
    for name, weight in ranks[0]["trained"].items():
        assert torch.equal(weight, ranks[1]["trained"][name]), name
        assert torch.equal(ranks[0]["initial"][name], ranks[1]["initial"][name]), name
    moved = [name for name, weight in ranks[0]["trained"].items() if not torch.equal(weight, ranks[0]["initial"][name])]
    assert "item_embedding.weight" in moved and len(moved) > len(ranks[0]["trained"]) // 2


def test_the_plugin_trainer_wraps_a_cpu_model_with_sparse_frozen_inputs(quick_config):
    from recbole_mdsrec.config import Config
    from recbole_mdsrec.registry import get_model, get_trainer

    settings = DistributedSettings(nproc=1, port=free_port())
    config = Config("SASRec", "ml-slice", config_dict={**quick_config, **settings.as_options(), "local_rank": 0})
    try:
        with pytest.raises(ValueError, match="device_ids"):  # what RecBole's own call does for a CPU model
            nn.parallel.DistributedDataParallel(nn.Linear(3, 2), device_ids=[0])
        from recbole_mdsrec.training.runner import build_data

        _, (train_data, _, _) = build_data(config)
        model = get_model("SASRec")(config, train_data._dataset)
        model.register_buffer("graph", torch.eye(3).to_sparse_csr(), persistent=False)  # as MDSRec holds its graphs
        with pytest.raises(RuntimeError, match="Sparse CSR"):
            nn.parallel.DistributedDataParallel(model)
        trainer = get_trainer(config["MODEL_TYPE"], "SASRec")(config, model)
        assert trainer.distributed_model.device_ids is None and trainer.distributed_model.module is model
    finally:
        torch.distributed.destroy_process_group()


def test_world_size_smaller_than_the_processes_is_refused():
    with pytest.raises(ConfigError, match="--world_size=3 is smaller than --group_offset"):
        DistributedSettings(nproc=2, world_size=3, offset=2)
    with pytest.raises(ConfigError, match="--nproc=0"):
        DistributedSettings(nproc=0)
