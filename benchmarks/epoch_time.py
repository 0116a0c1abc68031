"""Epoch time of one model under RecBole's stock settings and under this runner's.

    python benchmarks/epoch_time.py [--model SASRec] [--dataset ml-100k] [--batches N]

"stock" = RecBole as it runs on this stack: autograd anomaly detection on (as RecBole's
sine.py leaves it), glibc's default malloc, denormals kept, RecBole's own layers, fp32;
"runner" = what run.py does by default (anomaly off, malloc tuned, denormals flushed, see
recbole_mdsrec/launch.py; ``fast_layers``); "runner, bf16" = the same with ``--precision=bf16``. Each setting runs in a fresh process, one after the other,
and the result is reported as a ratio to the stock time measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_mdsrec.launch import FAST_MALLOC_ENV  # noqa: E402
from steps import optimizer_step  # noqa: E402

SETTINGS = {
    "stock": {"anomaly": True, "flush_denormal": False, "env": {}, "options": {"fast_layers": False}},
    "runner": {"anomaly": False, "flush_denormal": True, "env": FAST_MALLOC_ENV, "options": {}},
    "runner, bf16": {"anomaly": False, "flush_denormal": True, "env": FAST_MALLOC_ENV, "options": {"precision": "bf16"}},
}


def child(args) -> None:
    import torch

    from recbole_mdsrec.config import Config
    from recbole_mdsrec.training.runner import build

    config = Config(args.model, args.dataset, config_dict={"gpu_id": "", "state": "WARNING", "show_progress": False,
                                                           **json.loads(args.options)})
    _, (train_data, _, _), model, trainer = build(config)
    torch.autograd.set_detect_anomaly(args.anomaly == "on")
    torch.set_flush_denormal(args.flush_denormal == "on")
    batches = []
    model.train()
    start = time.perf_counter()
    for i, interaction in enumerate(train_data):
        if args.batches and i >= args.batches:
            break
        optimizer_step(model, trainer, interaction)
        batches.append(i)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "batches": len(batches), "epoch_batches": len(train_data)}))


def measure(args, name: str) -> dict:
    setting = SETTINGS[name]
    env = {k: v for k, v in os.environ.items() if k not in FAST_MALLOC_ENV}
    env.update(setting["env"])
    cmd = [sys.executable, __file__, "--child", "--model", args.model, "--dataset", args.dataset,
           "--anomaly", "on" if setting["anomaly"] else "off",
           "--flush_denormal", "on" if setting["flush_denormal"] else "off", "--batches", str(args.batches),
           "--options", json.dumps(setting["options"])]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="SASRec")
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--batches", type=int, default=0, help="time only the first N batches (0 = the whole epoch)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--anomaly", default="off", help=argparse.SUPPRESS)
    parser.add_argument("--flush_denormal", default="on", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    results = {name: measure(args, name) for name in SETTINGS}
    stock = results["stock"]["seconds"]
    from recbole_mdsrec.text_tables import render_table

    print(render_table(["setting", f"{args.model} on {args.dataset}: seconds ({results['stock']['batches']} of "
                        f"{results['stock']['epoch_batches']} batches)", "ratio to stock"],
                       [[name, f"{r['seconds']:.1f}", f"{r['seconds'] / stock:.2f}"] for name, r in results.items()]))


if __name__ == "__main__":
    main()
