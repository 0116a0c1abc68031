"""Distributed training on gloo (two CPU processes), through RecBole's distributed mode."""

import math
import socket
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from recbole_mdsrec import distributed
from recbole_mdsrec.errors import ConfigError


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return str(s.getsockname()[1])


def test_two_processes_train_and_test_like_one(quick_config):
    options = {**quick_config, "epochs": 2}
    from recbole_mdsrec.runner import run

    single = run("SASRec", "ml-slice", config_dict=options)
    args = SimpleNamespace(nproc=2, world_size=-1, ip="localhost", port=free_port(), group_offset=0)
    result = distributed.launch({"model": "SASRec", "dataset": "ml-slice", "config_dict": options},
                                distributed.settings(args))
    assert result is not None and result.epochs == 2
    assert set(result.test_result) == set(single.test_result)
    for key, value in result.test_result.items():
        assert math.isfinite(value) and 0.0 <= value <= 1.0
    # Same global batch and schedule; different dropout streams and shards, so not equal:
    # within a loose band of the one-process run on this 120-user slice.
    assert abs(result.test_result["recall@20"] - single.test_result["recall@20"]) < 0.1
    # the gradients were averaged: the losses are the same order as one process's
    assert result.train_losses[-1] < 2 * single.train_losses[-1]
    assert result.checkpoint and torch.load(result.checkpoint, weights_only=False)["state_dict"]


def test_recboles_ddp_wrapping_works_for_a_cpu_model():
    from recbole.trainer import trainer as trainer_module

    torch.distributed.init_process_group("gloo", init_method=f"tcp://localhost:{free_port()}", rank=0, world_size=1)
    try:
        with pytest.raises(ValueError, match="device_ids"):  # what RecBole's call does unpatched
            nn.parallel.DistributedDataParallel(nn.Linear(3, 2), device_ids=[0])
        wrapped = trainer_module.DistributedDataParallel(nn.Linear(3, 2), device_ids=[0])
        assert wrapped.device_ids is None
        wrapped(torch.ones(4, 3)).sum().backward()
        # a model holding a sparse graph as a frozen buffer (as MDSRec does) can be wrapped too
        with_graph = nn.Linear(3, 2)
        with_graph.register_buffer("graph", torch.eye(3).to_sparse_csr(), persistent=False)
        with pytest.raises(RuntimeError, match="Sparse CSR"):
            nn.parallel.DistributedDataParallel(with_graph)
        assert trainer_module.DistributedDataParallel(with_graph).device_ids is None
    finally:
        torch.distributed.destroy_process_group()


def test_world_size_smaller_than_the_processes_is_refused():
    args = SimpleNamespace(nproc=2, world_size=3, ip="localhost", port="1", group_offset=2)
    with pytest.raises(ConfigError, match="--world_size=3 is smaller than --group_offset"):
        distributed.settings(args)
