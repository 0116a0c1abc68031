"""Training and evaluation cost of MDSRec against SASRec and FDSA, measured in one run.

    python benchmarks/train_speed.py [--datasets ml-100k-mm,hm] [--models MDSRec,SASRec,FDSA] [--batches N]
                                     [--fast-layers-effect] [--precision bf16] [--compile] [--grid]

For each dataset and model, in a fresh process with the runner's settings: training time
per epoch (or over the first N batches, scaled to the epoch), full-sort evaluation
throughput (validation users per second), and peak resident memory. Figures are printed
as ratios to SASRec measured in the same run. For MDSRec it also counts the training
FLOPs of an epoch (torch's FlopCounterMode over one batch, times the batch count) and
reports the rate it reaches as a fraction of the fp32 and bf16 torch.mm GEMM rates measured
here. ``--precision`` and ``--compile`` are the runner's options of the same names, for every
model alike; ``--grid`` adds the grid's settings (``properties/grid.yaml``). The first
training step (a warm-up, and the compilation where ``--compile``) is not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_mdsrec.launch import FAST_MALLOC_ENV  # noqa: E402
from steps import optimizer_step  # noqa: E402


def gemm_rate(size: int = 2048, repeats: int = 5, dtype=None) -> float:
    """FLOP/s of a square torch.mm (float32 unless ``dtype``) on this machine, now."""
    import torch

    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def train_batches(model, trainer, train_data, limit: int) -> tuple[float, int, float]:
    """Seconds of ``limit`` training steps (all but the first, a warm-up that compiles where
    ``compile`` is on), their count, and the first step's seconds. As the plugin's trainer
    trains: anomaly detection off, the loss in the run's precision."""
    import torch

    model.train()
    done, first, start = -1, 0.0, time.perf_counter()
    with torch.autograd.set_detect_anomaly(False):
        for interaction in train_data:
            if limit and done >= limit:
                break
            optimizer_step(model, trainer, interaction)
            done += 1
            if done == 0:
                first, start = time.perf_counter() - start, time.perf_counter()
    return time.perf_counter() - start, max(done, 1), first


def step_flops(model, train_data) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    interaction = next(iter(train_data))
    with FlopCounterMode(display=False) as counter:
        model.calculate_loss(interaction).backward()
    return counter.get_total_flops()


def child(args) -> None:
    from recbole_mdsrec.config import Config
    from recbole_mdsrec.launch import ProcessTuning
    from recbole_mdsrec.training.runner import build

    from recbole_mdsrec import properties

    ProcessTuning.command_line().apply()  # as run.py tunes its process
    files = [str(properties.path("grid.yaml"))] if args.grid else None
    config = Config(args.model, args.dataset, files, config_dict={
        "gpu_id": "", "state": "WARNING", "show_progress": False, "fast_layers": not args.stock_layers,
        "precision": args.precision, "compile": args.compile, **json.loads(args.set or "{}")})
    _, (train_data, valid_data, _), model, trainer = build(config)
    seconds, batches, first = train_batches(model, trainer, train_data, args.batches)
    epoch_seconds = seconds * len(train_data) / batches
    trainer.evaluate(valid_data, load_best_model=False)  # a warm-up (and compile) pass
    start = time.perf_counter()
    trainer.evaluate(valid_data, load_best_model=False)
    eval_seconds = time.perf_counter() - start
    users = valid_data.sample_size  # one validation row per user in full-sort evaluation
    result = {
        "epoch_seconds": epoch_seconds,
        "first_step_seconds": first,
        "timed_batches": batches,
        "epoch_batches": len(train_data),
        "eval_seconds": eval_seconds,
        "precision": trainer.precision.used,
        "eval_users_per_second": users / eval_seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.flops:
        result["epoch_flops"] = step_flops(model, train_data) * len(train_data)
    print(json.dumps(result))


def measure(args, model: str, dataset: str, stock_layers: bool = False, precision: str | None = None,
            compile_forward: bool | None = None, grid: bool = False, options: dict | None = None) -> dict:
    """One model's figures, measured in a fresh process; ``options`` are config options."""
    precision = precision or getattr(args, "precision", "fp32")
    compile_forward = getattr(args, "compile", False) if compile_forward is None else compile_forward
    cmd = [sys.executable, __file__, "--child", "--model", model, "--dataset", dataset,
           "--batches", str(args.batches), "--precision", precision] + (["--flops"] if model == "MDSRec" else []) \
        + (["--stock-layers"] if stock_layers else []) + (["--compile"] if compile_forward else []) \
        + (["--grid"] if grid else []) + (["--set", json.dumps(options)] if options else [])
    out = subprocess.run(cmd, env={**os.environ, **FAST_MALLOC_ENV}, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(dataset: str, results: dict, rate: float, bf16_rate: float | None) -> None:
    peer = results.get("SASRec", {})
    from recbole_mdsrec.text_tables import render_table

    print(f"\n### {dataset}\n")
    rows = []
    for model, r in results.items():
        if "error" in r:
            rows.append([model, f"failed: {r['error']}", "", "", "", "", ""])
            continue

        def ratio(key):
            return f"{r[key] / peer[key]:.2f}" if peer and "error" not in peer else "n/a"

        rows.append([model, f"{r['epoch_seconds']:.1f}", ratio("epoch_seconds"), f"{r['eval_users_per_second']:.0f}",
                     ratio("eval_users_per_second"), f"{r['peak_rss_mib']:.0f}", ratio("peak_rss_mib")])
    print(render_table(["model", "epoch s", "× SASRec", "eval users/s", "× SASRec", "peak RSS MiB", "× SASRec"], rows))
    mdsrec = results.get("MDSRec", {})
    if "epoch_flops" in mdsrec:
        achieved = mdsrec["epoch_flops"] / mdsrec["epoch_seconds"]
        bf16 = (f" and {achieved / bf16_rate:.3f} of the bf16 one ({bf16_rate / 1e9:.0f} GFLOP/s), both"
                if bf16_rate else ",")
        print(f"\nMDSRec: {mdsrec['epoch_flops'] / 1e12:.2f} TFLOP per training epoch, {achieved / 1e9:.1f} GFLOP/s "
              f"= {achieved / rate:.2f} of the fp32 torch.mm rate ({rate / 1e9:.0f} GFLOP/s){bf16} measured in this run.")
    for model, r in results.items():
        if "timed_batches" in r and r["timed_batches"] < r["epoch_batches"]:
            print(f"({model}: {r['timed_batches']} of {r['epoch_batches']} batches timed, scaled to the epoch.)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k-mm,hm")
    parser.add_argument("--models", default="SASRec,MDSRec,FDSA")
    parser.add_argument("--batches", type=int, default=0, help="time the first N batches only (0 = whole epoch)")
    parser.add_argument("--fast-layers-effect", action="store_true",
                        help="also time each model with fast_layers=False and print the speed-up of fast_layers")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16 or fp16 (the option precision)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the models' forward (the option compile)")
    parser.add_argument("--grid", action="store_true", help="with properties/grid.yaml, as side-by-side grids run")
    parser.add_argument("--stock-layers", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--flops", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--set", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    import torch

    from recbole_mdsrec.training.precision import cpu_has_bf16

    # Without AVX512-BF16 or AMX a bfloat16 torch.mm falls back to a scalar kernel that takes
    # minutes and is no rate to compare with (the runner runs precision=bf16 as fp32 there).
    rate = gemm_rate()
    bf16_rate = gemm_rate(dtype=torch.bfloat16) if cpu_has_bf16() else None
    bf16 = f"{bf16_rate / 1e9:.0f} GFLOP/s bf16" if bf16_rate else "no bf16 rate (this CPU has neither AVX512-BF16 nor AMX)"
    print(f"torch.mm rate here: {rate / 1e9:.0f} GFLOP/s fp32, {bf16} "
          f"({torch.get_num_threads()} threads, {os.cpu_count()} cores)")
    for dataset in args.datasets.split(","):
        results = {m: measure(args, m, dataset, grid=args.grid) for m in args.models.split(",")}
        report(dataset, results, rate, bf16_rate)
        if args.fast_layers_effect:
            from recbole_mdsrec.text_tables import render_table

            rows = []
            for model, fast in results.items():
                stock = measure(args, model, dataset, stock_layers=True)
                if "error" in fast or "error" in stock:
                    rows.append([model, stock.get("error", ""), fast.get("error", ""), ""])
                    continue
                rows.append([model, f"{stock['epoch_seconds']:.1f}", f"{fast['epoch_seconds']:.1f}",
                             f"{stock['epoch_seconds'] / fast['epoch_seconds']:.2f}"])
            print("\n" + render_table(["model", "epoch s, fast_layers=False", "epoch s, fast_layers=True", "speed-up"], rows))


if __name__ == "__main__":
    main()
