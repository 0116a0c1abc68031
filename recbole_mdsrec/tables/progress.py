"""A grid's progress: which run of how many, the time elapsed and an estimate of the time left."""

from __future__ import annotations

import time


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    def __init__(self, total: int, jobs: int = 1, clock=time.monotonic):
        self.total = total
        self.jobs = jobs
        self.clock = clock
        self.position = 0
        self.started = clock()
        self.run_seconds: list[float] = []  # of the runs trained here, for the estimate

    def next(self, label: str) -> str:
        """``run k of n: label`` for the next run (trained, skipped or reused)."""
        self.position += 1
        return f"run {self.position} of {self.total}: {label}"

    def timing(self) -> str:
        elapsed = format_duration(self.clock() - self.started)
        if not self.run_seconds:
            return f"elapsed {elapsed}, time left unknown until a run ends"
        runs_left = (self.total - self.position + 1) / self.jobs
        return f"elapsed {elapsed}, about {format_duration(sum(self.run_seconds) / len(self.run_seconds) * runs_left)} left"

    def ran(self, seconds: float) -> None:
        self.run_seconds.append(seconds)

    def drop(self, runs: int) -> None:
        """Fewer runs than planned (an entry whose tuning runs all failed)."""
        self.total -= runs
