"""``python -m recbole_mdsrec.cli.summary [--results_dir=results] [--screening]``: ``results/summary.md``,
the models × datasets summary of every stored comparison, or with ``--screening``
``<results_dir>/screening.md``, the validation ranks of every ablation grid's presets
(``tables/summary.py``)."""

from __future__ import annotations

import argparse
import shlex
import sys

from recbole_mdsrec import roots
from recbole_mdsrec.cli.common import run_command
from recbole_mdsrec.errors import DataError


def main(argv: list[str] | None = None) -> int:
    from recbole_mdsrec.files import write_text_atomically
    from recbole_mdsrec.tables.summary import build_screening, build_summary, load_comparisons

    parser = argparse.ArgumentParser(prog="python -m recbole_mdsrec.cli.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results_dir", default=None, help="the results root (default: results/, or MDSREC_RESULTS_ROOT)")
    parser.add_argument("--screening", action="store_true",
                        help="rank the presets of each <dataset>/ablation grid on validation NDCG@10 instead")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    args = parser.parse_args(argv)

    def command() -> int:
        root = roots.results_root(args.results_dir)
        comparisons = load_comparisons(root, ablation=args.screening)
        if not comparisons:
            where, grid = (("<dataset>/ablation/summary.json", "--model=MDSRec --variant=all --seeds=1") if args.screening
                           else ("<dataset>/summary.json", "--model=A,B --seeds=3"))
            raise DataError(f"No grid in {root}: no {where} there. Fix: run one first "
                            f"(python run.py {grid} --dataset=NAME), or give --results_dir.")
        shown = shlex.join(["python", "-m", "recbole_mdsrec.cli.summary", *(sys.argv[1:] if argv is None else argv)])
        path = root / ("screening.md" if args.screening else "summary.md")
        write_text_atomically(path, build_screening(comparisons, shown) if args.screening
                              else build_summary(comparisons, shown))
        print(path.read_text())
        print(f"Written to {path}")
        return 0

    return run_command(command, args.debug)


if __name__ == "__main__":
    sys.exit(main())
