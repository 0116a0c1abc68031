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

from recbole_mdsrec.errors import ConfigError


def add_arguments(parser) -> None:
    group = parser.add_argument_group("distributed training (RecBole's options)")
    group.add_argument("--nproc", type=int, default=1, help="processes to start on this machine (default 1)")
    group.add_argument("--world_size", type=int, default=-1,
                       help="processes on all machines together (default: --nproc)")
    group.add_argument("--ip", default="localhost", help="address of the machine that starts rank 0")
    group.add_argument("--port", default="5678", help="free TCP port on that machine")
    group.add_argument("--group_offset", type=int, default=0,
                       help="global rank of this machine's first process (processes started before it)")


def wanted(args) -> bool:
    return args.nproc > 1 or args.world_size > 0


def settings(args) -> dict:
    """The config options RecBole's distributed mode reads, checked."""
    if args.nproc < 1:
        raise ConfigError(f"--nproc={args.nproc}: give the number of processes to start here, 1 or more.")
    world_size = args.nproc if args.world_size == -1 else args.world_size
    if world_size < args.nproc + args.group_offset:
        raise ConfigError(
            f"--world_size={world_size} is smaller than --group_offset + --nproc = {args.group_offset + args.nproc}. "
            "Fix: --world_size counts the processes of every machine together.")
    return {"world_size": world_size, "ip": args.ip, "port": str(args.port), "nproc": args.nproc,
            "offset": args.group_offset}


def launch(run_kwargs: dict, dist_settings: dict):
    """Run ``runner.run(**run_kwargs)`` in ``nproc`` processes; returns rank 0's RunResult
    (without its config) on the machine that holds rank 0, else None."""
    import torch.multiprocessing as mp

    from recbole_mdsrec.config import Config
    from recbole_mdsrec.data.locate import ensure_dataset

    # Prepare the dataset once, here, rather than in every process at the same time.
    ensure_dataset(Config(run_kwargs.get("model"), run_kwargs.get("dataset"), run_kwargs.get("config_file_list"),
                          run_kwargs.get("config_dict"), run_kwargs.get("cmd_args")))
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_worker, args=(run_kwargs, dist_settings, queue), nprocs=dist_settings["nproc"], join=True)
    return None if queue.empty() else queue.get()


def _worker(local_rank: int, run_kwargs: dict, dist_settings: dict, queue) -> None:
    import torch

    from recbole_mdsrec.runner import run

    # The machine's cores shared out: OpenMP threads of several processes must not contend.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist_settings["nproc"]))
    config_dict = {**(run_kwargs.get("config_dict") or {}), **dist_settings, "local_rank": local_rank}
    try:
        result = run(**{**run_kwargs, "config_dict": config_dict})
        if local_rank + dist_settings["offset"] == 0:
            queue.put(dataclasses.replace(result, config=None))
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
