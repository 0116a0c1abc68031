"""``python -m recbole_mdsrec.cli.graph_signal --dataset=ml-100k-mm [--betas=0.2,0.5,1] [--key=value ...]``:
how often each RGC graph option makes a user's validation item a neighbour of the last
training item, per modality, before any training (``graphs/signal.py``)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from recbole_mdsrec.cli.common import parse_overrides, run_command, split_files
from recbole_mdsrec.errors import ConfigError


def parse_betas(value: str) -> list[float]:
    try:
        betas = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        betas = []
    if not betas or any(not np.isfinite(b) or b < 0 for b in betas):
        raise ConfigError(f"Cannot read --betas={value}. Fix: give non-negative numbers, e.g. --betas=0.2,0.5,1.")
    return betas


def main(argv: list[str] | None = None) -> int:
    from recbole_mdsrec.graphs import signal

    parser = argparse.ArgumentParser(prog="python -m recbole_mdsrec.cli.graph_signal",
                                     description=signal.__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", "-d", default=None, help="dataset name (default: ml-100k-mm)")
    parser.add_argument("--betas", default="0.2,0.5,1", help="behavior_beta values of behavior_weighted (default 0.2,0.5,1)")
    parser.add_argument("--config_files", default=None, help="yaml files, comma-separated, as for run.py")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    args, rest = parser.parse_known_args(argv)

    def command() -> int:
        from recbole_mdsrec.config import Config
        from recbole_mdsrec.data.locate import ensure_dataset
        from recbole_mdsrec.graphs.spec import GraphSpec
        from recbole_mdsrec.registry import create_dataset

        overrides = parse_overrides(rest)
        betas = parse_betas(args.betas)
        config = Config("MDSRec", args.dataset, split_files(args.config_files), cmd_args={"state": "WARNING", **overrides})
        ensure_dataset(config)
        train, valid, _ = create_dataset(config).build()  # the test split is never looked at
        spec = GraphSpec.from_config(config)
        measurement = signal.measure(train, valid, spec, betas)
        print(f"Graph signal on {config['dataset']} (knn_k={spec.k}, behavior_window={spec.window}; "
              f"validation items only). An item co-occurs with {measurement.cooccurring:.1f} others on average "
              "in the training part.\n")
        print(signal.report(measurement))
        return 0

    return run_command(command, args.debug)


if __name__ == "__main__":
    sys.exit(main())
