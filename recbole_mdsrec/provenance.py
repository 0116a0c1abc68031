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
    """The commit the code ran from (``+changes`` if tracked files under ``CODE_PATHS``
    differ from it): a config hash does not see code. Outside a git checkout (an installed
    package), the package's version. Read once per process: the code a process runs is the
    code it imported."""
    checkout = Path(__file__).resolve().parents[1]
    installed = f"recbole-mdsrec {__version__}"
    if not (checkout / "setup.cfg").is_file():
        return installed

    def git(*args) -> str:
        return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        changed = bool(git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS))
    except (OSError, subprocess.CalledProcessError):
        return installed
    return commit + ("+changes" if changed else "")
