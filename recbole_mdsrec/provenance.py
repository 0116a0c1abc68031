"""Which code produced a result: the commit of the checkout (or the package version)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from recbole_mdsrec import __version__

#: What decides a run's numbers besides its config (results/ and docs do not).
CODE_PATHS = ("recbole_mdsrec", "properties", "run.py", "setup.cfg", "constraints.txt")


@functools.cache
def code_version() -> str:
    """The code a process runs: :func:`checkout_version` of this checkout, or outside a git
    checkout (an installed package) the package's version. Read once per process: the code a
    process runs is the code it imported."""
    return checkout_version(Path(__file__).resolve().parents[1]) or f"recbole-mdsrec {__version__}"


def checkout_version(checkout: Path) -> str | None:
    """The last commit that changed ``CODE_PATHS`` (``+changes`` if tracked files under them
    differ from it), None outside a git checkout: a config hash does not see code. Commits of
    results or docs leave it as it was, so that a grid whose runs.csv is committed as it grows
    can still go on from an interrupted run's training state."""
    if not (checkout / "setup.cfg").is_file():
        return None

    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        commit = git("log", "-1", "--format=%H", "--", *CODE_PATHS)[:12]
        changed = bool(git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS))
    except (OSError, subprocess.CalledProcessError):
        return None
    return (commit or "uncommitted") + ("+changes" if changed else "")
