"""Which code produced a result: the commit of the checkout (or the package version)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from recbole_mdsrec import __version__

#: What decides a run's numbers besides its config (results/ and docs do not) ...
CODE_PATHS = ("recbole_mdsrec", "properties", "run.py", "setup.cfg", "constraints.txt")
#: ... but for the tables, the command line and this file: they resolve configs, which the
#: config hash sees, read finished runs and name versions; they never touch a run's weights.
NOT_RUN_CODE = ("recbole_mdsrec/tables", "recbole_mdsrec/cli", "recbole_mdsrec/provenance.py")


@functools.cache
def code_version() -> str:
    """The code a process runs: :func:`checkout_version` of this checkout, or outside a git
    checkout (an installed package) the package's version. Read once per process: the code a
    process runs is the code it imported."""
    return checkout_version(Path(__file__).resolve().parents[1]) or f"recbole-mdsrec {__version__}"


def checkout_version(checkout: Path) -> str | None:
    """The last commit that changed ``CODE_PATHS`` outside ``NOT_RUN_CODE`` (``+changes`` if
    tracked files there differ from it), None outside a git checkout: a config hash does not see
    code. Commits of results, docs or the tables' code leave it as it was, so that a grid whose
    runs.csv is committed as it grows, or whose report is being mended, can still go on from an
    interrupted run's training state."""
    if not (checkout / "setup.cfg").is_file():
        return None

    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    paths = [*CODE_PATHS, *(f":(exclude){path}" for path in NOT_RUN_CODE)]
    try:
        commit = git("log", "-1", "--format=%H", "--", *paths)[:12]
        changed = bool(git("status", "--porcelain", "--untracked-files=no", "--", *paths))
    except (OSError, subprocess.CalledProcessError):
        return None
    return (commit or "uncommitted") + ("+changes" if changed else "")
