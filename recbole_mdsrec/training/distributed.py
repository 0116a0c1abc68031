"""Multi-process training on torch.distributed, through RecBole's own distributed mode.

``python run.py --model=MDSRec --dataset=ml-100k-mm --nproc=2`` starts two processes on this
machine; each trains on its share of every batch (RecBole splits ``train_batch_size`` across
the world, so the global batch is unchanged) and DistributedDataParallel averages their
gradients. Evaluation is split by user and its metrics are gathered. The backend is gloo on
the CPU and NCCL on GPUs (``Config._init_device``).

Several machines: start the same command on each, with the same ``--world_size`` (processes
in all), ``--ip``/``--port`` of the first machine, and ``--group_offset`` = the number of
processes started on the machines before this one. RecBole names these options alike.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.launch import ProcessTuning
from recbole_mdsrec.training.runner import RunRequest


@dataclass(frozen=True)
class DistributedSettings:
    """The processes of one distributed run, checked; ``as_options`` gives the config
    options RecBole's distributed mode reads."""

    nproc: int = 1
    world_size: int = -1  # -1: nproc (one machine)
    ip: str = "localhost"
    port: str = "5678"
    offset: int = 0  # global rank of this machine's first process

    def __post_init__(self):
        if self.nproc < 1:
            raise ConfigError(f"--nproc={self.nproc}: give the number of processes to start here, 1 or more.")
        if self.world_size == -1:
            object.__setattr__(self, "world_size", self.nproc)
        if self.world_size < self.nproc + self.offset:
            raise ConfigError(
                f"--world_size={self.world_size} is smaller than --group_offset + --nproc = {self.offset + self.nproc}. "
                "Fix: --world_size counts the processes of every machine together.")

    def as_options(self) -> dict:
        return {"world_size": self.world_size, "ip": self.ip, "port": str(self.port), "nproc": self.nproc,
                "offset": self.offset}


def launch(request: RunRequest, settings: DistributedSettings, tuning: ProcessTuning = ProcessTuning()):
    """Run ``request`` in ``settings.nproc`` processes, each tuned by ``tuning`` with its share of
    the cores; returns rank 0's RunResult (without its config) on the machine that holds
    rank 0, else None."""
    import torch.multiprocessing as mp

    from recbole_mdsrec.config import Config
    from recbole_mdsrec.data.locate import ensure_dataset

    # Prepare the dataset once, here, rather than in every process at the same time; and
    # RecBole's log folders, which its ranks would otherwise race to create.
    config = Config(request.model, request.dataset, list(request.config_files) or None, dict(request.config_dict),
                    request.overrides)
    ensure_dataset(config)
    os.makedirs(os.path.join("log", config["model"]), exist_ok=True)
    tuning = tuning.with_threads((os.cpu_count() or 1) // settings.nproc)
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_worker, args=(request, settings, tuning, queue), nprocs=settings.nproc, join=True)
    return None if queue.empty() else queue.get()


def _worker(local_rank: int, request: RunRequest, settings: DistributedSettings, tuning: ProcessTuning, queue) -> None:
    import torch

    from recbole_mdsrec.training.runner import run_request

    tuning.apply()
    config_dict = {**request.config_dict, **settings.as_options(), "local_rank": local_rank}
    try:
        result = run_request(dataclasses.replace(request, config_dict=config_dict))
        if local_rank + settings.offset == 0:
            queue.put(dataclasses.replace(result, config=None))
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
