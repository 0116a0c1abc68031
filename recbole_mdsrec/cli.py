"""The command line behind ``run.py``: RecBole's conventions, plugin and RecBole models."""

from __future__ import annotations

import argparse
import logging
import sys

from recbole_mdsrec import distributed
from recbole_mdsrec.errors import ConfigError, UserInputError
from recbole_mdsrec.tables import command as grid_command

METRIC_ORDER = ("recall", "ndcg", "mrr")


def parse_overrides(tokens: list[str]) -> dict[str, str]:
    """``--key=value`` pairs as RecBole's ``run_recbole.py`` takes them (values are
    converted to Python types later, by Config)."""
    overrides: dict[str, str] = {}
    for token in tokens:
        key, sep, value = token[2:].partition("=")
        if not token.startswith("--") or not sep or not key:
            raise ConfigError(
                f"Cannot read the argument '{token}'. Fix: write options as --key=value "
                "(e.g. --learning_rate=0.001, --epochs=5); run `python run.py --help` for the runner's own options."
            )
        if key in overrides and overrides[key] != value:
            raise ConfigError(f"Option --{key} is given twice with different values ('{overrides[key]}', '{value}'). Fix: give it once.")
        overrides[key] = value
    return overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        allow_abbrev=False,  # else --seed=3, a config option, would be read as --seeds
        description="Train and evaluate a plugin or RecBole model. Any other --key=value "
        "overrides a RecBole/plugin config option (e.g. --epochs=5 --learning_rate=0.001).",
    )
    parser.add_argument("--model", "-m", default="MDSRec", help="model name (default: MDSRec)")
    parser.add_argument("--dataset", "-d", default=None, help="dataset name (default: ml-100k-mm)")
    parser.add_argument("--config_files", default=None,
                        help="yaml files, comma- or space-separated, applied in order")
    parser.add_argument("--variant", default=None, help="named preset of the model's switches, e.g. wo_rgc "
                        "(see properties/variants/<Model>.yaml)")
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="continue an interrupted training from its <checkpoint>.last state")
    parser.add_argument("--recommend", action="store_true",
                        help="print top-k items for --user or --sequence from --checkpoint")
    parser.add_argument("--checkpoint", default=None, metavar="PATH", help="trained model for --recommend")
    parser.add_argument("--user", default=None, help="user token for --recommend")
    parser.add_argument("--sequence", default=None, help="item tokens, oldest first, comma-separated, for --recommend")
    grid_command.add_arguments(parser)
    distributed.add_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def split_files(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [name for part in value.split(",") for name in part.split() if name]


def format_metrics(result: dict) -> str:
    """Metrics as a table: one row per metric, one column per cut-off."""
    rows: dict[str, dict[str, float]] = {}
    for name, value in result.items():
        metric, _, k = name.partition("@")
        rows.setdefault(metric, {})[k] = value
    cutoffs = sorted({k for cols in rows.values() for k in cols}, key=lambda k: int(k) if k.isdigit() else 0)
    order = sorted(rows, key=lambda m: (METRIC_ORDER.index(m) if m in METRIC_ORDER else len(METRIC_ORDER), m))
    lines = ["| metric | " + " | ".join(f"@{k}" for k in cutoffs) + " |",
             "|---" * (len(cutoffs) + 1) + "|"]
    for metric in order:
        cells = [f"{rows[metric][k]:.4f}" if k in rows[metric] else "" for k in cutoffs]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def train_command(args, overrides: dict) -> int:
    from recbole_mdsrec.runner import run
    from recbole_mdsrec.variants import variant_overrides

    preset = variant_overrides(args.model, args.variant) if args.variant else None
    run_kwargs = {"model": args.model, "dataset": args.dataset, "config_file_list": split_files(args.config_files),
                  "config_dict": preset, "cmd_args": overrides, "resume": args.resume}
    if distributed.wanted(args):
        if args.resume:
            raise ConfigError("--resume continues a single-process run; drop --nproc/--world_size to resume it.")
        result = distributed.launch(run_kwargs, distributed.settings(args))
        if result is None:
            print("Training finished; the machine that holds rank 0 prints the test results.")
            return 0
    else:
        result = run(**run_kwargs)
    print(f"\nTest results of {result.model} on {result.dataset} "
          f"({result.epochs} epochs, best checkpoint {result.checkpoint}):")
    print(format_metrics(result.test_result))
    return 0


def recommend_topk(overrides: dict) -> int:
    """``--topk`` is RecBole's metric cut-off option when training; with --recommend it
    is the number of items to list, so it stays an ordinary override and is read here."""
    value = overrides.get("topk", "10")
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"--topk={value}: with --recommend it is the number of items to list, a positive integer.")
    return int(value)


def recommend_command(args, overrides: dict) -> int:
    topk = recommend_topk(overrides)
    if not args.checkpoint or bool(args.user) == bool(args.sequence):
        raise ConfigError(
            "--recommend needs --checkpoint=PATH and exactly one of --user=TOKEN or --sequence=ITEM,ITEM,... "
            "Fix: e.g. python run.py --recommend --checkpoint=saved/MDSRec-....pth --user=42 --topk=10"
        )
    from recbole_mdsrec.recommend import Recommender, format_recommendations

    recommender = Recommender(args.checkpoint, dataset=args.dataset)
    if args.user:
        history, who = recommender.user_history(args.user), f"user {args.user}"
    else:
        history, who = recommender.item_ids([t.strip() for t in args.sequence.split(",") if t.strip()]), "the sequence"
    print(f"Top {topk} items for {who} ({len(history)} past items, excluded) "
          f"by {recommender.config['model']} on {recommender.config['dataset']}:")
    print(format_recommendations(recommender.recommend(history, topk)))
    return 0


def main(argv: list[str]) -> int:
    args, rest = build_parser().parse_known_args(argv)
    try:
        overrides = parse_overrides(rest)
        if args.recommend:
            return recommend_command(args, overrides)
        if grid_command.wanted(args):
            if distributed.wanted(args):
                raise ConfigError("--nproc/--world_size apply to a single run, not to a grid of runs (--seeds, "
                                  "several models, --variant=all). Fix: run the grid without them.")
            return grid_command.main(args, overrides, argv)
        return train_command(args, overrides)
    except UserInputError as error:
        if args.debug:
            raise
        logging.shutdown()
        print(f"\nerror: {error}", file=sys.stderr)
        return 2
