"""Process settings that belong to the command line, never to an import of the library.

``run.py`` (and ``python -m recbole_mdsrec.cli``) restarts itself once with glibc malloc
tuning, which glibc reads only at start-up: with the defaults every large per-batch tensor
is an mmap that is unmapped again when freed, so each training step page-faults its memory
back in (``benchmarks/epoch_time.py`` measures the difference). Then it applies
:class:`ProcessTuning` to its own process and hands it to the processes it starts (a grid's
runs with ``--jobs``, distributed ranks), which apply it in turn.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass

FAST_MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
# Set to 1 to keep the environment as it is (e.g. to measure the difference).
KEEP_ENV_VAR = "MDSREC_KEEP_MALLOC"


@dataclass(frozen=True)
class ProcessTuning:
    """Settings of one process; the defaults change nothing.

    - ``flush_denormal``: floats below 1e-38 become 0. Attention masks of -10000 and
      dropout on small values produce denormals, which x86 handles in a slow path; no
      metric resolves values that small.
    - ``threads``: torch's intra-op threads (None: torch's default).
    """

    flush_denormal: bool = False
    threads: int | None = None

    @classmethod
    def command_line(cls) -> "ProcessTuning":
        return cls(flush_denormal=True)

    def with_threads(self, threads: int) -> "ProcessTuning":
        return dataclasses.replace(self, threads=max(1, threads))

    def apply(self) -> None:
        import torch

        if self.flush_denormal:
            torch.set_flush_denormal(True)
        if self.threads is not None:
            torch.set_num_threads(self.threads)


def has_fast_malloc(environ=os.environ) -> bool:
    return all(environ.get(key) == value for key, value in FAST_MALLOC_ENV.items())


def reexec_with_fast_malloc() -> None:
    """Restart this very command with the malloc settings, unless they are set already
    or the user opted out. Children (spawned workers, grid runs) inherit them."""
    if has_fast_malloc() or os.environ.get(KEEP_ENV_VAR) == "1":
        return
    os.execve(sys.executable, sys.orig_argv, {**os.environ, **FAST_MALLOC_ENV})
