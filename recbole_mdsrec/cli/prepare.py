"""``python -m recbole_mdsrec.cli.prepare``: build datasets for training.

    python -m recbole_mdsrec.cli.prepare [NAME ...]                     the built-in datasets (default: all)
    python -m recbole_mdsrec.cli.prepare NAME --from=FORMAT [options]   any other dataset (README "Bring your own data")
    python -m recbole_mdsrec.cli.prepare --source=mydata.yaml            one described in yaml

Reads the raw files, keeps the k-core, encodes every item's text and image offline (or
takes features and codes as given) and writes RecBole atomic files plus
``<name>.<modality>.npz`` features into ``<data root>/<name>/``. A second run reuses cached
embeddings and takes seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recbole_mdsrec import roots
from recbole_mdsrec.cli.common import run_command
from recbole_mdsrec.data.arrays import read_feature_file
from recbole_mdsrec.data.formats import FORMATS
from recbole_mdsrec.data.importer import ImportSpec, code_option, feature_option
from recbole_mdsrec.data.prepare import DATASETS, default_encoders, prepare_dataset, prepare_source
from recbole_mdsrec.errors import UserInputError
from recbole_mdsrec.text_tables import render_table

# Options that describe a dataset of your own (they need --from, or a name the plugin does not know).
SOURCE_OPTIONS = ("path", "stem", "interactions", "user", "item", "time", "rating", "order", "items", "item_key",
                  "text", "images", "codes", "dim", "allow_missing", "allow_extra")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recbole_mdsrec.cli.prepare", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"datasets to prepare (default: the built-in {', '.join(DATASETS)})")
    parser.add_argument("--raw_dir", type=Path, default=None,
                        help=f"built-in datasets: folder holding one sub-folder of raw files per dataset (default: "
                        f"${roots.RAW_ROOT_ENV}, else {roots.DEFAULT_RAW_ROOT})")
    parser.add_argument("--data_path", type=Path, default=None,
                        help=f"where <NAME>/ folders are written (default: ${roots.DATA_ROOT_ENV}, else {roots.DEFAULT_DATA_ROOT})")
    parser.add_argument("--kcore", type=int, default=None,
                        help="keep users and items with at least this many interactions, to a fixed point; 1 disables "
                        "(default: 5, or 1 where the source's split is given)")
    parser.add_argument("--feature", action="append", default=[], metavar="MODALITY=FEATS.npy:TOKENS.txt",
                        help="precomputed features of a modality: a float [n, d] .npy and a file of its n item tokens, "
                        "or a table (.csv/.tsv/.parquet: token, then the values); repeat for more modalities")
    group = parser.add_argument_group("your own dataset (one NAME)")
    group.add_argument("--source", type=Path, default=None, metavar="YAML",
                       help="a dataset described in yaml: name, from, and these options as keys")
    group.add_argument("--from", dest="source_format", default=None, choices=list(FORMATS),
                       help="the files' format: table (your CSV/TSV/Parquet), recbole, recbole-benchmark, mmrec, "
                       "unisrec, mql4grec, microlens (docs/data.md)")
    group.add_argument("--path", type=Path, default=None, help="folder holding the format's files")
    group.add_argument("--stem", default=None, help="the files' common name stem (default: the only one in --path)")
    group.add_argument("--interactions", type=Path, default=None, help="table: the interactions file")
    group.add_argument("--user", default=None, help="table: user column (default user_id)")
    group.add_argument("--item", default=None, help="table: item column (default item_id)")
    group.add_argument("--time", default=None, help="table: timestamp column (numbers or dates)")
    group.add_argument("--rating", default=None, help="table: rating column (default: every row rates 1)")
    group.add_argument("--order", default=None, choices=("time", "file"),
                       help="time: by the timestamp, ties in file order (default); file: each user's rows are in order")
    group.add_argument("--items", type=Path, default=None, help="an item table (CSV/TSV/Parquet), one row per item")
    group.add_argument("--item_key", default=None, help="its item column (default: --item)")
    group.add_argument("--text", default=None, help="item-table columns, comma-separated, that make the text modality")
    group.add_argument("--images", default=None, help="image path pattern with {item}, e.g. photos/{item}.jpg")
    group.add_argument("--codes", action="append", default=[], metavar="MODALITY=CODES.json[:K]",
                       help="semantic-ID codes of a modality ({item: [code, ...]}, K codes per level), one-hot per level")
    group.add_argument("--dim", action="append", default=[], metavar="MODALITY=D",
                       help="unisrec: the dimension of a float32 feature binary (default: from its size)")
    group.add_argument("--allow_missing", default=None, metavar="MODALITY,...",
                       help="modalities (or all) that some interacted items may lack")
    group.add_argument("--allow_extra", action="store_true", help="drop feature and item rows of items no interaction has")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def _pairs(options: list[str], option: str, example: str) -> list[tuple[str, str]]:
    pairs = []
    for text in options:
        key, sep, value = text.partition("=")
        if not (key and sep and value):
            raise UserInputError(f"--{option} {text!r} is malformed; write it as {example}.")
        pairs.append((key, value))
    return pairs


def import_spec(args, name: str) -> ImportSpec:
    """The ``ImportSpec`` of a dataset of your own from the command line."""
    given = {key: getattr(args, key) for key in ("path", "stem", "interactions", "user", "item", "time", "rating",
                                                  "order", "items", "item_key", "images")}
    options = {k: v for k, v in given.items() if v is not None}
    dims = {}
    for modality, value in _pairs(args.dim, "dim", "MODALITY=D, e.g. --dim=text=768"):
        if not value.isdigit():
            raise UserInputError(f"--dim={modality}={value}: the dimension must be a positive integer.")
        dims[modality] = int(value)
    return ImportSpec(
        name, args.source_format or "table", **options,
        text=tuple(c.strip() for c in (args.text or "").split(",") if c.strip()),
        features=tuple(feature_option(m, v) for m, v in _pairs(args.feature, "feature", "MODALITY=FEATS.npy:TOKENS.txt")),
        codes=tuple(code_option(m, v) for m, v in _pairs(args.codes, "codes", "MODALITY=CODES.json[:K]")),
        dims=dims, kcore=args.kcore, allow_extra=args.allow_extra,
        allow_missing=tuple(m.strip() for m in (args.allow_missing or "").split(",") if m.strip()),
    )


def builtin_features(args) -> dict:
    """``--feature`` for a built-in dataset: precomputed rows in place of encoding a modality."""
    arrays = {}
    for modality, value in _pairs(args.feature, "feature", "MODALITY=FEATS.npy:TOKENS.txt"):
        option = feature_option(modality, value)
        arrays[modality] = read_feature_file(modality, option.path, option.tokens)
    return arrays


def format_summary(summaries: list[dict]) -> str:
    modalities = sorted({m for s in summaries for m in s["missing"]})
    header = ["dataset", "users", "items", "interactions", *(f"no {m}" for m in modalities), "seconds"]
    rows = [[s["dataset"], s["users"], s["items"], s["interactions"], *(s["missing"].get(m, "-") for m in modalities),
             f"{s['seconds']:.1f}"] for s in summaries]
    return render_table(header, rows, markdown=False, align=["left"] + ["right"] * (len(header) - 1))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> int:
        own = [f"--{key}" for key in SOURCE_OPTIONS if getattr(args, key) not in (None, [], False)]
        if args.source is not None:
            if args.names or args.source_format or own:
                raise UserInputError("--source describes the dataset in yaml; give no NAME, --from or file options with it.")
            specs = [ImportSpec.from_yaml(args.source)]
        elif args.source_format or own or (len(args.names) == 1 and args.names[0] not in DATASETS):
            if len(args.names) != 1:
                raise UserInputError(f"A dataset of your own takes exactly one NAME (got {len(args.names)}), the name "
                                     "its folder and files get. Fix: e.g. python -m recbole_mdsrec.cli.prepare mydata --from=...")
            if args.names[0] in DATASETS:
                raise UserInputError(f"'{args.names[0]}' is a built-in dataset, which reads its own raw files; "
                                     f"{', '.join(own) or '--from'} describe(s) a dataset of your own. Fix: pick another NAME.")
            specs = [import_spec(args, args.names[0])]
        else:
            specs = []
        names = [] if specs else (args.names or list(DATASETS))
        if args.feature and not specs and len(names) != 1:
            raise UserInputError(f"--feature applies to one dataset, but {len(names)} were named ({', '.join(names)}); "
                                 "name exactly one.")
        encoders = default_encoders(progress=True)  # shared, so each model loads once
        data_root = roots.data_root(args.data_path)
        summaries = [prepare_source(spec, data_root, True, encoders) for spec in specs]
        for name in names:
            summaries.append(prepare_dataset(name, roots.raw_root(args.raw_dir), data_root, args.kcore,
                                             builtin_features(args), True, encoders))
        for summary in summaries:
            print(f"{summary['dataset']}: written to {summary['out_dir']}", file=sys.stderr)
        print(format_summary(summaries))
        return 0

    return run_command(command, args.debug)


if __name__ == "__main__":
    sys.exit(main())
