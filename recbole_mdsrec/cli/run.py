"""The command behind ``run.py``: RecBole's conventions, plugin and RecBole models.

Five modes, said by ``--mode`` or by one rule: ``recommend`` with ``--recommend``;
``explain`` with ``--explain``; ``export`` with ``--export=FORMAT``; ``grid`` when ``--model`` lists several models, or ``--seeds`` or several presets (``--variant=all``, ``--variant=full,authors``) are given
(what one run cannot be); ``train`` otherwise. An option of another mode is refused with
the mode it belongs to, never read as a wish to switch modes.
"""

from __future__ import annotations

import argparse

from recbole_mdsrec.cli import grid as grid_command
from recbole_mdsrec.cli.common import parse_overrides, run_command, split_files
from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.launch import ProcessTuning
from recbole_mdsrec.metrics import metric_sort_key
from recbole_mdsrec.text_tables import render_table

MODES = ("train", "grid", "recommend", "explain", "export")
DISTRIBUTED_OPTIONS = ("nproc", "world_size", "ip", "port", "group_offset")
MODE_FLAGS = {"recommend": "--recommend", "explain": "--explain", "export": "--export"}  # a mode's own flag
#: option -> the modes that read it; anywhere else it is refused, never read as a wish to switch modes
OPTION_MODES = {
    **{name: ("grid",) for name in (*grid_command.OPTIONS, "table_only", "rerun_without_per_user")},
    **{name: ("train",) for name in (*DISTRIBUTED_OPTIONS, "resume")},
    "sequence": ("recommend",), "user": ("recommend", "explain"), "checkpoint": ("recommend", "explain", "export"),
    "picture": ("explain",), "out": ("export",),
}
#: what else to say in the fix for a misplaced option
OPTION_HINTS = {"checkpoint": " (to go on training: --resume)"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py",
        allow_abbrev=False,  # else --seed=3, a config option, would be read as --seeds
        description="Train and evaluate a plugin or RecBole model, run a side-by-side grid, or recommend "
        "from a checkpoint. Any other --key=value overrides a RecBole/plugin config option "
        "(e.g. --epochs=5 --learning_rate=0.001).",
    )
    parser.add_argument("--mode", choices=MODES, default=None,
                        help="train (one run), grid (models x seeds, a table), recommend or export; default: "
                        "grid for several models, --seeds or --variant=all, recommend for --recommend, "
                        "export for --export, else train")
    parser.add_argument("--model", "-m", default="MDSRec", help="model name, or several, comma-separated, for a grid "
                        "(default: MDSRec; 'comparison' = the eleven models of the comparison tables)")
    parser.add_argument("--dataset", "-d", default=None, help="dataset name (default: ml-100k-mm)")
    parser.add_argument("--config_files", default=None,
                        help="yaml files, comma- or space-separated, applied in order")
    parser.add_argument("--variant", default=None, help="named preset of the model's switches, e.g. wo_rgc; "
                        "all, or a list such as full,authors: those presets as a grid (see properties/variants/<Model>.yaml)")
    parser.add_argument("--resume", default=None, metavar="PATH",
                        help="continue an interrupted training from its <checkpoint>.last state")
    group = parser.add_argument_group("recommend (--recommend, the same as --mode=recommend)")
    group.add_argument("--recommend", action="store_true", help="print top-k items (--topk=N) for --user or --sequence")
    group.add_argument("--checkpoint", default=None, metavar="PATH", help="trained model to recommend from (or to export)")
    group.add_argument("--user", default=None, help="user token")
    group.add_argument("--sequence", default=None, help="item tokens, oldest first, comma-separated")
    group = parser.add_argument_group("export (--export=FORMAT, the same as --mode=export)")
    group.add_argument("--export", default=None, choices=("onnx", "torchscript"),
                       help="write --checkpoint as a stand-alone top-k scorer (--topk=N items) into --out")
    group.add_argument("--out", default=None, metavar="DIR", help="folder of the exported scorer")
    group = parser.add_argument_group("explain (--explain, the same as --mode=explain)")
    group.add_argument("--explain", action="store_true",
                       help="for --checkpoint and --user: each recommendation's score per modality, the attention over "
                       "the history, graph neighbours; a table, and a PNG (--picture=PATH)")
    group.add_argument("--picture", default=None, metavar="PATH", help="where --explain draws (default explain-<user>.png)")
    grid_command.add_arguments(parser.add_argument_group("grid (side-by-side tables)"))
    group = parser.add_argument_group("distributed training of one run (RecBole's options)")
    group.add_argument("--nproc", type=int, default=None, help="processes to start on this machine (default 1)")
    group.add_argument("--world_size", type=int, default=None,
                       help="processes on all machines together (default: --nproc)")
    group.add_argument("--ip", default=None, help="address of the machine that starts rank 0 (default localhost)")
    group.add_argument("--port", default=None, help="free TCP port on that machine (default 5678)")
    group.add_argument("--group_offset", type=int, default=None,
                       help="global rank of this machine's first process (processes started before it)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    return parser


def resolve_mode(args) -> str:
    """The mode of a command line (see the module docstring)."""
    chosen = [flag for mode, flag in MODE_FLAGS.items() if getattr(args, mode)]
    if len(chosen) > 1:
        raise ConfigError(f"{' and '.join(chosen)} are different modes. Fix: keep one of them.")
    flagged = next((mode for mode in MODE_FLAGS if getattr(args, mode)), None)
    implied = flagged or (
        "grid" if ("," in args.model or args.model == "comparison" or args.seeds is not None
                 or grid_command.is_preset_grid(args.variant))
        else "train")
    mode = args.mode or implied
    if flagged is not None and mode != flagged:
        raise ConfigError(f"{MODE_FLAGS[flagged]} contradicts --mode={mode}. Fix: drop one of them.")
    if mode == "train" and implied == "grid":
        raise ConfigError("--mode=train runs one model once, but the command names a grid (several models, "
                          "--seeds or a list of presets). Fix: drop --mode=train, or name one model and --seed=N.")
    for name, modes in OPTION_MODES.items():
        if getattr(args, name) not in (None, False) and mode not in modes:
            readers = [MODE_FLAGS.get(m, f"--mode={m}") for m in modes]
            said = readers[0] if len(readers) == 1 else f"{', '.join(readers[:-1])} and {readers[-1]}"
            add = f"add {readers[0]}" if len(readers) == 1 else "add one of them"
            if modes == ("grid",):
                add += " (a grid of one model: --mode=grid --model=NAME)"
            raise ConfigError(f"--{name} is read by {said}, but this command runs --mode={mode}. "
                              f"Fix: {add}{OPTION_HINTS.get(name, '')}, or drop --{name}.")
    return mode


def format_metrics(result: dict) -> str:
    """Metrics as a table: one row per metric, one column per cut-off."""
    rows: dict[str, dict[str, float]] = {}
    for name in sorted(result, key=metric_sort_key):
        metric, _, k = name.partition("@")
        rows.setdefault(metric, {})[k] = result[name]
    cutoffs = sorted({k for cols in rows.values() for k in cols}, key=lambda k: int(k) if k.isdigit() else 0)
    return render_table(["metric", *(f"@{k}" for k in cutoffs)],
                        [[metric, *(f"{cols[k]:.4f}" if k in cols else "" for k in cutoffs)] for metric, cols in rows.items()])


def distributed_settings(args):
    from recbole_mdsrec.training.distributed import DistributedSettings

    given = {"nproc": args.nproc, "world_size": args.world_size, "ip": args.ip, "port": args.port,
             "offset": args.group_offset}
    return DistributedSettings(**{k: v for k, v in given.items() if v is not None})


def train_command(args, overrides: dict) -> int:
    from recbole_mdsrec.training.runner import RunRequest, run_request
    from recbole_mdsrec.variants import variant_overrides

    tuning = ProcessTuning.command_line()
    tuning.apply()
    preset = variant_overrides(args.model, args.variant) if args.variant else {}
    request = RunRequest(args.model, args.dataset, tuple(split_files(args.config_files) or ()), preset, overrides,
                         args.resume)
    distributed = any(getattr(args, name) is not None for name in DISTRIBUTED_OPTIONS)
    if distributed and args.resume:
        raise ConfigError("--resume continues a single-process run; drop --nproc/--world_size to resume it.")
    if distributed:
        from recbole_mdsrec.training.distributed import launch

        result = launch(request, distributed_settings(args), tuning)
        if result is None:
            print("Training finished; the machine that holds rank 0 prints the test results.")
            return 0
    else:
        result = run_request(request)
    print(f"\nTest results of {result.model} on {result.dataset} "
          f"({result.epochs} epochs, best checkpoint {result.checkpoint}):")
    print(format_metrics(result.test_result))
    return 0


def recommend_topk(overrides: dict) -> int:
    """``--topk`` is RecBole's metric cut-off option when training; when recommending it is
    the number of items to list, so it stays an ordinary override and is read here."""
    value = overrides.get("topk", "10")
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"--topk={value}: when recommending it is the number of items to list, a positive integer.")
    return int(value)


def recommend_command(args, overrides: dict) -> int:
    topk = recommend_topk(overrides)
    if not args.checkpoint or bool(args.user) == bool(args.sequence):
        raise ConfigError(
            "--recommend needs --checkpoint=PATH and exactly one of --user=TOKEN or --sequence=ITEM,ITEM,... "
            "Fix: e.g. python run.py --recommend --checkpoint=saved/MDSRec-....pth --user=42 --topk=10"
        )
    from recbole_mdsrec.training.recommend import Recommender, format_recommendations

    recommender = Recommender(args.checkpoint, dataset=args.dataset)
    if args.user:
        history, who = recommender.user_history(args.user), f"user {args.user}"
    else:
        history, who = recommender.item_ids([t.strip() for t in args.sequence.split(",") if t.strip()]), "the sequence"
    print(f"Top {topk} items for {who} ({len(history)} past items, excluded) "
          f"by {recommender.config['model']} on {recommender.config['dataset']}:")
    print(format_recommendations(recommender.recommend(history, topk)))
    return 0


def explain_command(args, overrides: dict) -> int:
    topk = recommend_topk(overrides)
    if not args.checkpoint or not args.user:
        raise ConfigError("--explain needs --checkpoint=PATH and --user=TOKEN. Fix: e.g. python run.py --explain "
                          "--checkpoint=saved/MDSRec-....pth --user=42 --topk=10")
    from recbole_mdsrec.training.explain import Explainer, draw_explanation, format_explanation, item_images
    from recbole_mdsrec.training.recommend import Recommender

    recommender = Recommender(args.checkpoint, dataset=args.dataset)
    explanation = Explainer(recommender).explain(args.user, topk)
    print(format_explanation(explanation))
    picture = draw_explanation(explanation, args.picture or f"explain-{args.user}.png",
                               item_images(recommender.config["dataset"]))
    print(f"\nDrawn to {picture.path}")
    return 0


def export_command(args, overrides: dict) -> int:
    topk = recommend_topk(overrides)
    if not args.checkpoint or not args.out:
        raise ConfigError("--export needs --checkpoint=PATH and --out=DIR. Fix: e.g. python run.py --export=onnx "
                          "--checkpoint=saved/MDSRec-....pth --out=exported/mdsrec --topk=10")
    from recbole_mdsrec.training.export import export_scorer

    exported = export_scorer(args.checkpoint, args.out, args.export, topk)
    print(f"Wrote {exported.model_file} (top {topk} of a padded sequence), {exported.items_file.name} "
          f"and {exported.manifest_file.name} to {exported.folder}/")
    return 0


def main(argv: list[str]) -> int:
    args, rest = build_parser().parse_known_args(argv)

    def command() -> int:
        overrides = parse_overrides(rest)
        mode = resolve_mode(args)
        if mode == "recommend":
            return recommend_command(args, overrides)
        if mode == "export":
            return export_command(args, overrides)
        if mode == "explain":
            return explain_command(args, overrides)
        if mode == "grid":
            return grid_command.main(args, overrides, argv)
        return train_command(args, overrides)

    return run_command(command, args.debug)
