"""Atomic writes and the lock that every file the plugin writes goes through."""

import os
import threading
import time

import pytest

from recbole_mdsrec.files import atomic_write, exclusive_lock, write_text_atomically


def test_an_interrupted_write_leaves_the_old_file_and_no_litter(tmp_path):
    path = tmp_path / "runs.csv"
    write_text_atomically(path, "model,seed\nSASRec,1\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path, "w") as f:
            f.write("model,seed\n")
            raise KeyboardInterrupt  # Ctrl-C halfway through the new file
    assert path.read_text() == "model,seed\nSASRec,1\n"
    assert os.listdir(tmp_path) == ["runs.csv"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


def test_binary_writes_replace_the_file_whole(tmp_path):
    path = tmp_path / "deep" / "state.pth"
    with atomic_write(path) as f:
        f.write(b"\x00" * 10)
    with atomic_write(path) as f:
        f.write(b"\x01" * 3)
    assert path.read_bytes() == b"\x01" * 3


def test_the_lock_lets_one_holder_in_at_a_time(tmp_path):
    lock, events, inside = tmp_path / ".lock", [], threading.Event()

    def first():
        with exclusive_lock(lock):
            events.append("first in")
            inside.set()
            time.sleep(0.3)
            events.append("first out")

    def second():
        inside.wait(10)
        with exclusive_lock(lock):
            events.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert events == ["first in", "first out", "second in"]
