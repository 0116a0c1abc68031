"""Where a grid's runs train: in this process, one at a time, or in processes of their own.

Both executors take ``submit(key, fn, *args)`` and hand back finished tasks from
``wait()``, each with its result or, if it raised, a one-line description and the
traceback. :class:`ProcessExecutor` starts a fresh spawned process per task (so a run's
memory and RecBole's process-wide state go with it), at most ``jobs`` at once, each with
its share of the threads; leaving it early (Ctrl-C, an error) terminates its own processes,
and no others.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import traceback
from dataclasses import dataclass

from recbole_mdsrec.launch import ProcessTuning


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


@dataclass
class Finished:
    key: str
    result: object = None
    error: str | None = None      # one line: the exception's type and message
    traceback: str | None = None


class SerialExecutor:
    """Each task runs at once, in this process; ``KeyboardInterrupt`` goes through."""

    slots = 1

    def __init__(self):
        self._finished: list[Finished] = []

    def submit(self, key: str, fn, *args) -> None:
        try:
            self._finished.append(Finished(key, result=fn(*args)))
        except Exception as error:  # noqa: BLE001 - the grid records it and goes on
            self._finished.append(Finished(key, error=one_line(error), traceback=traceback.format_exc()))

    def wait(self) -> list[Finished]:
        finished, self._finished = self._finished, []
        return finished

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


class ProcessExecutor:
    """Each task in a spawned process of its own, ``jobs`` at a time."""

    def __init__(self, jobs: int, tuning: ProcessTuning, threads: int):
        self.slots = jobs
        self._tuning = tuning.with_threads(threads // jobs)
        self._context = multiprocessing.get_context("spawn")
        self._running: dict = {}  # receiving end of each task's pipe -> (key, process)

    def submit(self, key: str, fn, *args) -> None:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_run_task, args=(send, self._tuning, fn, args), daemon=True)
        process.start()
        send.close()  # the child holds the only sending end: its death closes the pipe
        self._running[receive] = (key, process)

    def wait(self) -> list[Finished]:
        """The tasks that have finished, after waiting for at least one (if any runs)."""
        finished = []
        for receive in multiprocessing.connection.wait(list(self._running)):
            key, process = self._running.pop(receive)
            try:
                status, payload = receive.recv()
            except EOFError:  # killed (out of memory, a signal) before it could answer
                process.join()
                status, payload = "error", (f"RuntimeError: the run's process ended without a result "
                                            f"(exit code {process.exitcode})", "")
            receive.close()
            process.join()
            if status == "interrupted":
                raise KeyboardInterrupt
            finished.append(Finished(key, result=payload) if status == "ok"
                            else Finished(key, error=payload[0], traceback=payload[1]))
        return finished

    def stop(self) -> None:
        """Terminate this executor's processes (their runs' last training states are on disk)."""
        for receive, (_, process) in list(self._running.items()):
            process.terminate()
            process.join()
            receive.close()
        self._running.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _run_task(send, tuning: ProcessTuning, fn, args) -> None:
    tuning.apply()
    try:
        send.send(("ok", fn(*args)))
    except KeyboardInterrupt:
        send.send(("interrupted", None))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which records it
        send.send(("error", (one_line(error), traceback.format_exc())))
    finally:
        send.close()
