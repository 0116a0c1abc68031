"""``run.py --mode=grid``: the options behind side-by-side tables (``--seeds``, ``--budget``,
``--jobs``, ``--results_dir``, ``--grid_config``), read into a ``GridSpec``, run, and
written as ``results/<dataset>/table.md``."""

from __future__ import annotations

import contextlib
import json
import logging
import shlex
import signal
import sys
from pathlib import Path

import yaml

from recbole_mdsrec import properties, roots
from recbole_mdsrec.cli.common import split_files
from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.launch import ProcessTuning
from recbole_mdsrec.schema import NON_RESULT_KEYS

OPTIONS = ("seeds", "budget", "jobs", "results_dir", "grid_config", "reuse_from")
REFERENCE_MODEL = "MDSRec"
REFERENCE_PRESET = "full"
#: ``--model=comparison``: the paper's baselines, BERT4Rec and SGP4SR beside MDSRec, in table order.
COMPARISON_MODELS = ("SASRec", "GRU4Rec", "BERT4Rec", "GRU4RecF", "SASRecF", "FDSA", "UniSRec", "MISSRec", "MMMLP",
                     "SGP4SR", "MDSRec")


def add_arguments(group) -> None:
    group.add_argument("--seeds", default=None,
                       help="run a grid of every model x seed: a count N (seeds 1..N) or a list such as 1,2,3")
    group.add_argument("--budget", default=None,
                       help="configurations tried per model on validation, the defaults first (default 1: no tuning)")
    group.add_argument("--jobs", default=None,
                       help="runs trained at once, each in its own process with its share of the threads (default 1)")
    group.add_argument("--results_dir", default=None,
                       help="folder of the grid's results, one sub-folder per dataset (default $MDSREC_RESULTS_ROOT, "
                       "else results/); a scratch folder keeps trial grids out of the committed tables")
    group.add_argument("--reuse_from", default=None,
                       help="other results folders, comma-separated (e.g. results/trials/screening): a run they "
                       "finished with the same config hash (in <folder>/<dataset>/ or its ablation/) is copied, "
                       "not trained again")
    group.add_argument("--table_only", action="store_true",
                       help="train nothing: write the table from the runs already recorded (a grid still running)")
    group.add_argument("--rerun_without_per_user", action="store_true",
                       help="train again the finished runs recorded without per-user metrics (kept before they "
                       "were), so that the table gives their per-user tests")
    group.add_argument("--grid_config", default=None,
                       help="yaml of settings shared by every model of a grid ('' for none; default: the plugin's grid.yaml)")


def parse_seeds(value: str | None, overrides: dict) -> list[int]:
    """``--seeds=3`` -> [1, 2, 3]; ``--seeds=7,8`` -> [7, 8]; none -> ``--seed`` or [1]."""
    if value is None:
        return [int(overrides.pop("seed"))] if "seed" in overrides else [1]
    if "seed" in overrides:
        raise ConfigError("Both --seed and --seeds are given. Fix: list the seeds in --seeds (e.g. --seeds=1,2,3) only.")
    parts = [part.strip() for part in value.split(",") if part.strip()]
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if not numbers or ("," not in value and numbers[0] < 1) or len(set(numbers)) != len(numbers):
        raise ConfigError(f"Cannot read --seeds={value}. Fix: give a count (--seeds=3 runs seeds 1, 2, 3) "
                          "or distinct integer seeds (--seeds=1,2,3; one seed: --seeds=7,).")
    return list(range(1, numbers[0] + 1)) if "," not in value else numbers


def parse_count(option: str, value: str | None, fix: str) -> int:
    """A positive integer option, 1 when not given."""
    try:
        count = 1 if value is None else int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ConfigError(f"Cannot read --{option}={value}. Fix: give a positive integer{fix}.")
    return count


def reuse_folders(value: str | None, dataset: str) -> list[Path]:
    """``--reuse_from=A,B``: each results root's ``<dataset>/`` and ``<dataset>/ablation/``."""
    roots_given = [Path(part.strip()) for part in (value or "").split(",") if part.strip()]
    missing = [str(root) for root in roots_given if not root.is_dir()]
    if missing:
        raise ConfigError(f"--reuse_from names {', '.join(missing)}, which is not a folder. Fix: give results "
                          "folders that hold <dataset>/runs.csv, e.g. --reuse_from=results/trials/screening.")
    return [folder for root in roots_given for folder in (root / dataset, root / dataset / "ablation")]


def grid_files(grid_config: str | None, config_files: list[str] | None) -> tuple[list[str], list[str]]:
    """The yaml files of every run (the grid's own first, so the user's files override it)
    and the options the grid file sets."""
    if grid_config == "":
        return list(config_files or []), []
    path = properties.path("grid.yaml") if grid_config is None else Path(grid_config)
    if not path.is_file():
        raise ConfigError(f"Grid config {path} (option --grid_config) does not exist. "
                          "Fix: give an existing yaml file, or --grid_config= for none.")
    return [str(path), *(config_files or [])], list(yaml.safe_load(path.read_text()) or {})


def is_preset_grid(variant: str | None) -> bool:
    """``--variant=all`` or a list such as ``--variant=full,authors``: a grid over presets."""
    return variant is not None and (variant == "all" or "," in variant)


def preset_entries(models: list[str], variant: str) -> list:
    """The (model, preset) entries of a preset grid: every preset of each model for ``all``,
    else the listed ones, each checked to exist."""
    from recbole_mdsrec.tables.plan import Entry
    from recbole_mdsrec.variants import variant_overrides, variants_of

    missing = [m for m in models if not variants_of(m)]
    if missing:
        raise ConfigError(f"--variant={variant}: {', '.join(missing)} has no presets. "
                          "Fix: name models that have properties/variants/<Model>.yaml, e.g. --model=MDSRec.")
    if variant == "all":
        return [Entry(m, v) for m in models for v in variants_of(m)]
    names = list(dict.fromkeys(name.strip() for name in variant.split(",") if name.strip()))
    for model in models:
        for name in names:
            variant_overrides(model, name)  # raises, naming the known presets
    return [Entry(m, v) for m in models for v in names]


def _run_settings(args, overrides: dict) -> tuple:
    """What makes two grid commands train the same runs, models and seeds aside."""
    return (split_files(args.config_files), args.grid_config, args.budget, is_preset_grid(args.variant),
            {k: v for k, v in overrides.items() if k not in NON_RESULT_KEYS})


def covering_grid(folder: Path, labels: list[str], seeds: list[int], args, overrides: dict):
    """The command that wrote ``folder``'s table, parsed as ``(args, overrides, argv)``, when
    this grid is part of it: the same settings, some of its entries and seeds, not all. A
    grid run to add runs to a dataset's table (one model, one seed) then writes that table
    again rather than a table of its own over it. None otherwise."""
    from recbole_mdsrec.cli.common import parse_overrides
    from recbole_mdsrec.cli.run import build_parser

    try:
        written = json.loads((folder / "summary.json").read_text())
        argv = shlex.split(written["command"])[2:]  # after "python run.py"
        table_labels, table_seeds = [e["label"] for e in written["entries"]], written["seeds"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    table_args, rest = build_parser().parse_known_args(argv)
    try:
        table_overrides = parse_overrides(rest)
    except ConfigError:
        return None
    part = set(labels) <= set(table_labels) and set(seeds) <= set(table_seeds)
    whole = set(labels) == set(table_labels) and set(seeds) == set(table_seeds)
    if not part or whole or _run_settings(args, overrides) != _run_settings(table_args, table_overrides):
        return None
    return table_args, table_overrides, argv


@contextlib.contextmanager
def interrupt_on_signals():
    """``kill PID`` (SIGTERM) stops a grid as Ctrl-C does: every finished run is kept and each
    running one leaves its last epoch's training state for the rerun. A grid started in the
    background by a shell without job control ignores SIGINT; here it interrupts too. The
    handlers before are restored on the way out."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _show_progress() -> None:
    logger = logging.getLogger("recbole_mdsrec.tables")
    if not logger.handlers:  # RecBole reconfigures the root logger at every run; this one is the grid's own
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s grid: %(message)s", "%d %b %H:%M"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def main(args, overrides: dict, argv: list[str]) -> int:
    from recbole_mdsrec.config import DEFAULT_DATASET
    from recbole_mdsrec.tables.grid import Grid
    from recbole_mdsrec.tables.plan import Entry, GridSpec
    from recbole_mdsrec.tables.report import ReportInfo, write_report

    models = [name.strip() for name in args.model.split(",") if name.strip()]
    models = [m for name in models for m in (COMPARISON_MODELS if name == "comparison" else (name,))]
    ablation = is_preset_grid(args.variant)
    if ablation:
        entries = preset_entries(models, args.variant)
        reference = next((e for e in entries if e.variant == REFERENCE_PRESET), entries[0])
    else:
        entries = [Entry(m, args.variant) for m in models]
        reference = next((e for e in entries if e.model == REFERENCE_MODEL), None)
    seeds = parse_seeds(args.seeds, overrides)
    budget = parse_count("budget", args.budget, ", the same for every model (--budget=1, the default, trains the defaults only)")
    jobs = parse_count("jobs", args.jobs, " (--jobs=2 trains two runs at once; each takes half of the threads)")
    dataset = args.dataset or DEFAULT_DATASET
    files, grid_keys = grid_files(args.grid_config, split_files(args.config_files))
    comparison_folder = roots.results_root(args.results_dir) / dataset
    folder = comparison_folder / "ablation" if ablation else comparison_folder
    command = shlex.join(["python", "run.py", *(a for a in argv if a != "--table_only")])

    _show_progress()
    tuning = ProcessTuning.command_line()
    tuning.apply()
    # Same config hash, same run: the ablation's reference preset and the comparison's
    # MDSRec are trained once between them, whichever command runs first.
    other_folder = comparison_folder if ablation else comparison_folder / "ablation"
    # Trials elsewhere (--results_dir) also reuse the runs of the main tables.
    main_folder = roots.results_root() / dataset
    reuse = [other_folder, *([main_folder, main_folder / "ablation"] if main_folder != comparison_folder else []),
             *reuse_folders(args.reuse_from, dataset)]
    spec = GridSpec(entries, dataset, seeds, folder, budget, files, overrides, reuse_dirs=reuse, jobs=jobs,
                    tuning=tuning, train=not args.table_only, rerun_without_per_user=args.rerun_without_per_user)
    try:
        with interrupt_on_signals():
            outcomes = Grid(spec).run()
    except KeyboardInterrupt:  # the grid has said what is kept and how to go on
        return 130
    info = ReportInfo(
        title=f"{'Ablation of ' + ', '.join(models) if ablation else 'Comparison'} on {dataset}",
        command=command, seeds=seeds, budget=budget, shared_keys=[*grid_keys, *overrides],
        reference=reference.label if reference else None, others="preset" if ablation else "baseline",
        planned_runs=len(entries) * len(seeds),
    )
    failed = any(o.error for o in outcomes) or any(row["status"] != "ok" for o in outcomes for row in [*o.tried, *o.rows])
    covering = None if args.table_only else covering_grid(folder, [e.label for e in entries], seeds, args, overrides)
    if covering is not None:
        table_args, table_overrides, table_argv = covering
        # The folder's table, written next, shows these runs among the rest: one table, not two.
        print(f"\nThese runs ({', '.join(e.label for e in entries)}; seeds {', '.join(map(str, seeds))}) are part of "
              f"{folder}/table.md, the table of `{shlex.join(['python', 'run.py', *table_argv])}`; "
              "it is written again from every run it holds.")
        table_args.table_only, table_args.results_dir = True, str(comparison_folder.parent)
        return max(main(table_args, table_overrides, table_argv), 1 if failed else 0)
    table = write_report(outcomes, info, folder)
    print("\n" + table.read_text())
    print(f"Written to {folder}/: table.md, runs.csv, configs/, chart.png")
    return 1 if failed else 0
