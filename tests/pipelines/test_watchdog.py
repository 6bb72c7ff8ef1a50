"""The watchdog: whatever a killed command started is stopped, and the watchdog itself ends."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from riskstrat.pipelines.watchdog import RUN_PID_ENV

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the watchdog is Linux only")

COMMAND = textwrap.dedent(
    """
    import subprocess, sys, time
    from riskstrat.pipelines.watchdog import start_watchdog
    watchdog = start_watchdog()
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(watchdog.pid, server.pid, flush=True)
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _marked_within(pid: int, seconds: float) -> bool:
    """Whether ``pid`` carries the run's mark (its environment reads empty until its exec is done)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if RUN_PID_ENV.encode() in Path(f"/proc/{pid}/environ").read_bytes():
            return True
        time.sleep(0.01)
    return False


def _gone_within(pids: tuple[int, ...], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_kill_9_at_any_moment_leaves_neither_server_nor_watchdog():
    # Kills land at random moments of the watchdog's wait, including mid-poll, where a
    # signal handler once deadlocked it.
    rng = random.Random(16)
    left = []
    for _ in range(12):
        command = subprocess.Popen([sys.executable, "-c", COMMAND], stdout=subprocess.PIPE, text=True)
        watchdog, server = (int(v) for v in command.stdout.readline().split())
        assert _marked_within(server, 5.0)
        time.sleep(rng.uniform(0.0, 2.5))
        os.kill(command.pid, signal.SIGKILL)
        command.wait()
        if not _gone_within((watchdog, server), 5.0):
            left.append((watchdog, server))
            for pid in (watchdog, server):
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
    assert left == []


def test_a_command_that_ends_normally_leaves_no_watchdog():
    script = COMMAND.replace("time.sleep(600)\n", "server.kill()\n")  # the command's last line: it ends
    command = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    watchdog, _ = (int(v) for v in command.stdout.split())
    assert _gone_within((watchdog,), 5.0)
