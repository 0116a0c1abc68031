"""``python -m recbole_mdsrec.prepare [NAME ...]``: build datasets for training.

Reads raw data (the raw data root, ``recbole_mdsrec/roots.py``), keeps the k-core, encodes
every item's text and image offline and writes RecBole atomic files plus
``<name>.<modality>.npz`` features into ``<data root>/<name>/``. A second run reuses cached
embeddings and takes seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recbole_mdsrec import roots
from recbole_mdsrec.cli.common import run_command
from recbole_mdsrec.data.prepare import DATASETS, default_encoders, prepare_dataset
from recbole_mdsrec.errors import UserInputError
from recbole_mdsrec.text_tables import render_table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recbole_mdsrec.prepare",
        description="Build RecBole atomic files and per-modality item features from raw data.",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"datasets to prepare (default: all of {', '.join(DATASETS)})"
    )
    parser.add_argument("--raw_dir", type=Path, default=None,
                        help=f"folder holding one sub-folder of raw files per dataset (default: ${roots.RAW_ROOT_ENV}, "
                        f"else {roots.DEFAULT_RAW_ROOT})")
    parser.add_argument("--data_path", type=Path, default=None,
                        help=f"where <NAME>/ folders are written (default: ${roots.DATA_ROOT_ENV}, else {roots.DEFAULT_DATA_ROOT})")
    parser.add_argument("--kcore", type=int, default=5,
                        help="keep users and items with at least this many interactions, to a fixed point; 1 disables "
                        "(default: %(default)s)")
    parser.add_argument("--feature", action="append", default=[], metavar="MODALITY=FEATS.npy:TOKENS.txt",
                        help="use your own features for a modality instead of encoding it: a float [n, d] .npy and a "
                        "text file of the n item tokens, one per line (needs exactly one NAME)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def parse_feature_options(options: list[str]) -> dict[str, tuple[Path, Path]]:
    precomputed = {}
    for option in options:
        modality, _, files = option.partition("=")
        features, _, tokens = files.rpartition(":")
        if not (modality and features and tokens):
            raise UserInputError(
                f"--feature {option!r} is malformed; write it as MODALITY=FEATS.npy:TOKENS.txt, "
                f"e.g. --feature=image=img.npy:items.txt."
            )
        precomputed[modality] = (Path(features), Path(tokens))
    return precomputed


def format_summary(summaries: list[dict]) -> str:
    modalities = sorted({m for s in summaries for m in s["missing"]})
    header = ["dataset", "users", "items", "interactions", *(f"no {m}" for m in modalities), "seconds"]
    rows = [[s["dataset"], s["users"], s["items"], s["interactions"], *(s["missing"].get(m, "-") for m in modalities),
             f"{s['seconds']:.1f}"] for s in summaries]
    return render_table(header, rows, markdown=False, align=["left"] + ["right"] * (len(header) - 1))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = args.names or list(DATASETS)

    def command() -> int:
        precomputed = parse_feature_options(args.feature)
        if precomputed and len(names) != 1:
            raise UserInputError(
                f"--feature applies to one dataset, but {len(names)} were named ({', '.join(names)}); "
                f"name exactly one."
            )
        encoders = default_encoders(progress=True)  # shared, so each model loads once
        summaries = []
        for name in names:
            summary = prepare_dataset(name, roots.raw_root(args.raw_dir), roots.data_root(args.data_path), args.kcore,
                                      precomputed, True, encoders)
            summaries.append(summary)
            print(f"{name}: written to {summary['out_dir']}", file=sys.stderr)
        print(format_summary(summaries))
        return 0

    return run_command(command, args.debug)
