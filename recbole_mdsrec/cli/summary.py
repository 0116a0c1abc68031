"""``python -m recbole_mdsrec.cli.summary [--results_dir=results]``: ``results/summary.md``, the
models × datasets summary of every stored comparison (``tables/summary.py``)."""

from __future__ import annotations

import argparse
import shlex
import sys

from recbole_mdsrec import roots
from recbole_mdsrec.cli.common import run_command
from recbole_mdsrec.errors import DataError


def main(argv: list[str] | None = None) -> int:
    from recbole_mdsrec.files import write_text_atomically
    from recbole_mdsrec.tables.summary import build_summary, load_comparisons

    parser = argparse.ArgumentParser(prog="python -m recbole_mdsrec.cli.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--results_dir", default=None, help="the results root (default: results/, or MDSREC_RESULTS_ROOT)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    args = parser.parse_args(argv)

    def command() -> int:
        root = roots.results_root(args.results_dir)
        comparisons = load_comparisons(root)
        if not comparisons:
            raise DataError(f"No comparison in {root}: no <dataset>/summary.json there. Fix: run a grid first "
                            "(python run.py --model=A,B --dataset=NAME --seeds=3), or give --results_dir.")
        shown = ["python", "-m", "recbole_mdsrec.cli.summary", *(sys.argv[1:] if argv is None else argv)]
        path = root / "summary.md"
        write_text_atomically(path, build_summary(comparisons, shlex.join(shown)))
        print(path.read_text())
        print(f"Written to {path}")
        return 0

    return run_command(command, args.debug)


if __name__ == "__main__":
    sys.exit(main())
