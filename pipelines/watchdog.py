"""Nothing a run starts outlives it: a watchdog that stops the run's leftover processes.

Prefect's temporary server (``SubprocessASGIServer``, a uvicorn child process)
is stopped by an ``atexit`` hook, which never runs when the command is killed
(``kill -9``, the out-of-memory killer). So the command line marks its
environment with ``RISKSTRAT_RUN_PID=<its pid>`` (every process it starts
inherits it, the server included) and starts this watchdog as its child. The
watchdog asks for ``PR_SET_PDEATHSIG``, so the kernel signals it the moment the
command dies, however it dies; it then stops (SIGTERM, then SIGKILL after a
grace period) every process still carrying the mark. Linux only; elsewhere the
watchdog is not started.

Run as ``python -m riskstrat.pipelines.watchdog <pid>``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

RUN_PID_ENV = "RISKSTRAT_RUN_PID"
"""Environment variable marking every process started by one riskstrat command."""

PR_SET_PDEATHSIG = 1
GRACE_SECONDS = 1.0
POLL_SECONDS = 1.0

_started: dict[int, subprocess.Popen[bytes]] = {}


def _marked_processes(run_pid: int) -> list[int]:
    """Processes (other than this one) whose environment carries ``RISKSTRAT_RUN_PID=run_pid``."""
    mark = f"{RUN_PID_ENV}={run_pid}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), run_pid):
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours
            continue
        if mark in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_marked_processes(run_pid: int, grace: float = GRACE_SECONDS) -> list[int]:
    """SIGTERM every process marked with ``run_pid``, SIGKILL those still alive after ``grace``.

    Returns:
        The process IDs that were signalled.
    """
    pids = _marked_processes(run_pid)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    for pid in _marked_processes(run_pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _set_parent_death_signal() -> None:
    """Ask the kernel to send this process SIGTERM when its parent (the command) dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def start_watchdog() -> subprocess.Popen[bytes] | None:
    """Mark this process's environment and start its watchdog (once per process; Linux only).

    Must be called from the main thread: the kernel sends the parent-death
    signal when the thread that started the child ends.

    Returns:
        The watchdog process, or None where it cannot run.
    """
    pid = os.getpid()
    if pid in _started:
        return _started[pid]
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    os.environ[RUN_PID_ENV] = str(pid)
    watchdog = subprocess.Popen(
        [sys.executable, "-m", "riskstrat.pipelines.watchdog", str(pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )
    _started[pid] = watchdog
    return watchdog


WAKE_SIGNALS = frozenset({signal.SIGTERM, signal.SIGHUP})
"""Signals that mean the command died (the parent-death signal is SIGTERM)."""


def _watch(run_pid: int) -> None:
    """Wait until ``run_pid`` dies (parent-death signal, or re-parenting), then stop what it left.

    The wake-up signals are blocked and collected with ``sigtimedwait`` rather than
    handled: a Python handler that set a ``threading.Event`` could deadlock when the
    signal arrived while the main thread held the event's own lock inside ``wait``
    (which left watchdogs, and so servers, running for good).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the command; it decides
    signal.pthread_sigmask(signal.SIG_BLOCK, WAKE_SIGNALS)
    _set_parent_death_signal()
    # Checked after asking for the signal: a command that died before that has already re-parented us.
    while os.getppid() == run_pid and signal.sigtimedwait(WAKE_SIGNALS, POLL_SECONDS) is None:
        pass
    stop_marked_processes(run_pid)


if __name__ == "__main__":
    _watch(int(sys.argv[1]))
