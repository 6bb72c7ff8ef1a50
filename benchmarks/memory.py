"""Resident memory of a process tree, read from ``/proc`` (Linux).

Shared by the runner (a stage process's peak, counting Spark's JVM) and the stage
processes themselves (each step's peak, to say where memory goes). Standard library
only, so importing it adds nothing to a stage's own figure.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

GIB = 1024**3


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces; the parent id is the second field after it.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants now (0 when it has gone)."""
    page = os.sysconf("SC_PAGE_SIZE")
    children = _children_map()
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):  # the process may have just ended
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * page
        todo.extend(children.get(current, []))
    return total


class PeakSampler:
    """Samples a process tree's resident memory in a thread and keeps the peak.

    Use as a context manager; ``peak_bytes`` holds the largest sample (at least one is
    taken on entry and one on exit, so a short block still gets a figure).
    """

    def __init__(self, pid: int | None = None, interval: float = 0.2) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self.peak_bytes = 0
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, tree_rss_bytes(self.pid))

    def _run(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakSampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
