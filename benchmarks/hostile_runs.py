"""Kill -9 and concurrency trials of the weekly run (issue 16: one transaction per week).

    python -m benchmarks.hostile_runs [--root /tmp/riskstrat-hostile] [--people 3000] [--trials 20]
        [--refuse-trials 5] [--only kills|legacy|concurrent|swap] [--reuse]

Sets up once in ``<root>`` (a relocated copy of ``configs/``, ``riskstrat generate``,
``riskstrat train``, a first week W1 and a clean reference run of the next week W2),
then runs, each time with the real command line (``riskstrat worklists``):

(a) **kill -9 at chosen points** of a run of W2 (or a re-run of W1): while the
    feature matrix is being written (its temporary file exists), during scoring
    (right after the feature step finished), after scoring, while the export's
    staging folder holds a partial CSV, right after the week folder is published
    (where earlier versions wrote the history separately), and while a re-run of
    W1 swaps its folder. After each kill it records the state found: is W1 intact
    (bytes unchanged, or complete when it was the week re-run), is W2 absent or
    complete with its history (every file the manifest lists, with its hash), how
    many temporary leftovers there are; then it runs W2 again and checks that
    the run succeeds, removes the leftovers, and gives CSVs byte-identical to the
    clean reference (so change and weeks on list were computed against W1).
(a') **what an earlier version left**: a history kept apart (moved into the week
    folder, then used) and a week published without its history (refused, named).
(b) **two runs of the same week at once**, ``--trials`` times with the lock's
    default wait and ``--refuse-trials`` times with ``lock_timeout_seconds: 0``,
    while a thread polls the existence of the week folder in a tight loop:
    successes, lock waits, refusals and any moment with no week folder.
(c) **the swap alone, from two processes**, without the lock (as the issue's
    trial did): 2 x 300 republications of one folder, with the exchange and with
    the fallback rename-with-backup, counting errors and moments with no folder.

Results go to ``<root>/hostile_runs.json`` and are printed as a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from riskstrat.io import file_sha256
from riskstrat.pipelines.config import write_relocated_config

REPO = Path(__file__).resolve().parents[1]
RISKSTRAT = str(Path(sys.executable).with_name("riskstrat"))
W1 = date(2026, 1, 5)
W2 = W1 + timedelta(7)
_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
_BACKUP = re.compile(r"^\..+\.old$")


# ----------------------------------------------------------------------------- set-up


def write_config(root: Path) -> Path:
    """The shipped settings with everything under ``<root>/outputs`` and gates loosened for a small population."""
    return write_relocated_config(
        root / "configs",
        root / "outputs",
        {
            "model.yaml": {
                "promotion": {"calibration_slope_bounds": [0.01, 100.0], "oe_bounds": [0.01, 100.0]},
                "evaluation": {"n_boot": 20},
            },
            "fairness.yaml": {"bootstrap_n": 20, "gating_groupings": []},
            "data.yaml": {"lock_timeout_seconds": 300},
        },
    )


def command(root: Path, *args: str) -> list[str]:
    return [RISKSTRAT, "--config-dir", str(root / "configs"), *args]


def run(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(command(root, *args), capture_output=True, text=True, cwd=root)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def set_up(root: Path, people: int) -> dict[str, float]:
    """Generate, train, publish W1, and a clean W2 kept as the reference; timings in seconds."""
    timings = {}
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    write_config(root)
    for name, args in (
        ("generate", ("generate", "--people", str(people))),
        ("train", ("train",)),
        ("week_1", ("worklists", "--week", W1.isoformat())),
        ("week_2", ("worklists", "--week", W2.isoformat())),
    ):
        start = time.monotonic()
        run(root, *args)
        timings[name] = round(time.monotonic() - start, 1)
    worklists = root / "outputs" / "worklists"
    shutil.copytree(worklists / W2.isoformat(), root / "reference_w2")
    shutil.rmtree(worklists / W2.isoformat())
    shutil.copytree(worklists, root / "start_worklists")  # W1 only
    return timings


# ----------------------------------------------------------------------------- state checks


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def week_state(folder: Path) -> str:
    """'absent', 'complete' (manifest, every listed file with its hash, history) or what is wrong."""
    if not folder.exists():
        return "absent"
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return "no manifest"
    files = json.loads(manifest.read_text())["files"]
    if "history.parquet" not in files:
        return "no history"
    for name, digest in files.items():
        if not (folder / name).is_file() or file_sha256(folder / name) != digest:
            return f"{name} missing or changed"
    return "complete"


def leftovers(output: Path) -> dict[str, int]:
    temp = backups = 0
    for _, dirs, files in os.walk(output):
        for name in list(dirs) + files:
            temp += bool(_TEMP.match(name))
            backups += bool(_BACKUP.match(name))
    return {"temporary": temp, "backups": backups}


def reset(root: Path) -> None:
    """Back to W1 published only (and no lock holder, leftovers or W2)."""
    worklists = root / "outputs" / "worklists"
    shutil.rmtree(worklists)
    shutil.copytree(root / "start_worklists", worklists)


# ----------------------------------------------------------------------------- (a) kill -9


def _staging_with_a_file(worklists: Path, week: date) -> bool:
    try:
        return any(
            path.is_dir() and any(path.iterdir()) for path in worklists.glob(f".{week.isoformat()}.*.tmp")
        )
    except FileNotFoundError:  # swapped away while looking
        return False


def _feature_temp(output: Path) -> bool:
    return any(output.glob("features/*/.features_*.tmp"))


def kill_points(root: Path) -> list[dict[str, Any]]:
    """(name, week run, how to know the moment has come) for each kill."""
    output = root / "outputs"
    worklists = output / "worklists"
    w1_inode = {}

    def w1_swapped() -> bool:
        try:
            return os.stat(worklists / W1.isoformat()).st_ino != w1_inode["before"]
        except FileNotFoundError:
            return True

    return [
        {
            "point": "while the feature matrix is written (temporary file exists)",
            "week": W2,
            "prepare": lambda: shutil.rmtree(output / "features", ignore_errors=True),
            "poll": lambda: _feature_temp(output),
        },
        {
            "point": "during scoring (the feature step just finished)",
            "week": W2,
            "log": re.compile(r"build-features.*Finished in state"),
        },
        {
            "point": "after scoring, during selection and reasons",
            "week": W2,
            "log": re.compile(r"score-population.*Finished in state"),
        },
        {
            "point": "during export (staging folder holds a partial CSV)",
            "week": W2,
            "poll": lambda: _staging_with_a_file(worklists, W2),
        },
        {
            "point": "right after the week folder is published (earlier versions: before the history step)",
            "week": W2,
            "poll": lambda: (worklists / W2.isoformat()).exists(),
        },
        {
            "point": "re-run of W1, during its export (staging exists)",
            "week": W1,
            "poll": lambda: _staging_with_a_file(worklists, W1),
        },
        {
            "point": "re-run of W1, right after its folder is swapped",
            "week": W1,
            "prepare": lambda: w1_inode.update(before=os.stat(worklists / W1.isoformat()).st_ino),
            "poll": w1_swapped,
        },
    ]


def _kill_when(process: subprocess.Popen, point: dict[str, Any], log: Path) -> bool:
    """Poll (or read the run's log) until the moment comes, then SIGKILL; False if the run ended first."""
    if "log" in point:
        pattern = point["log"]
        point = {**point, "poll": lambda: bool(pattern.search(log.read_text(errors="replace")))}
    while process.poll() is None:
        if point["poll"]():
            process.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.0005 if "log" not in point else 0.01)
    return False


def kill_trials(root: Path) -> list[dict[str, Any]]:
    output = root / "outputs"
    worklists = output / "worklists"
    reference = folder_bytes(root / "reference_w2")
    w1_before = folder_bytes(root / "start_worklists" / W1.isoformat())
    results = []
    for point in kill_points(root):
        reset(root)
        if "prepare" in point:
            point["prepare"]()
        log = root / "killed_run.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                command(root, "worklists", "--week", point["week"].isoformat()),
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=root,
            )
            killed = _kill_when(process, point, log)
            process.wait()
        time.sleep(1)  # let the watchdog stop the killed run's Prefect server
        w1 = worklists / W1.isoformat()
        w1_state = week_state(w1)
        w1_intact = w1_state == "complete" and (
            point["week"] == W1 or folder_bytes(w1) == w1_before  # a re-run may replace it, whole
        )
        found = {
            "point": point["point"],
            "killed": killed,
            "W1": "intact" if w1_intact else w1_state,
            "W2": week_state(worklists / W2.isoformat()),
            "leftovers_before_next_run": leftovers(output),
        }
        start = time.monotonic()
        again = run(root, "worklists", "--week", W2.isoformat(), check=False)
        found["next_run_exit"] = again.returncode
        found["next_run_seconds"] = round(time.monotonic() - start, 1)
        found["leftovers_after_next_run"] = leftovers(output)
        found["W2_after_next_run"] = week_state(worklists / W2.isoformat())
        found["W2_csv_identical_to_reference"] = (worklists / W2.isoformat()).exists() and {
            k: v for k, v in folder_bytes(worklists / W2.isoformat()).items() if k.endswith(".csv")
        } == {k: v for k, v in reference.items() if k.endswith(".csv")}
        found["W1_after_next_run"] = week_state(worklists / W1.isoformat())
        results.append(found)
        print(json.dumps(found), flush=True)
    return results


# ----------------------------------------------------------------------------- (a') what earlier versions left


def legacy_trials(root: Path) -> list[dict[str, Any]]:
    """The states an earlier version could leave: history kept apart (moved), or never recorded (refused)."""
    worklists = root / "outputs" / "worklists"
    reference = folder_bytes(root / "reference_w2")
    results = []
    for case in ("history kept apart by an earlier version", "week published without its history"):
        reset(root)
        w1 = worklists / W1.isoformat()
        manifest = json.loads((w1 / "manifest.json").read_text())
        del manifest["files"]["history.parquet"]
        (w1 / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if case.startswith("history kept apart"):
            (worklists / "history").mkdir()
            (w1 / "history.parquet").rename(worklists / "history" / f"{W1.isoformat()}.parquet")
        else:
            (w1 / "history.parquet").unlink()
        done = run(root, "worklists", "--week", W2.isoformat(), check=False)
        text = done.stdout + done.stderr
        w2 = worklists / W2.isoformat()
        found = {
            "case": case,
            "exit": done.returncode,
            "message": next((line for line in text.splitlines() if line.startswith("error:")), ""),
            "W1": week_state(w1),
            "W2": week_state(w2),
            "W2_csv_identical_to_reference": w2.exists()
            and {k: v for k, v in folder_bytes(w2).items() if k.endswith(".csv")}
            == {k: v for k, v in reference.items() if k.endswith(".csv")},
            "old_history_folder_left": (worklists / "history").exists(),
        }
        results.append(found)
        print(json.dumps(found), flush=True)
    return results


# ----------------------------------------------------------------------------- (b) two runs at once


def set_lock_timeout(root: Path, seconds: float) -> None:
    import yaml

    path = root / "configs" / "data.yaml"
    settings = yaml.safe_load(path.read_text())
    settings["lock_timeout_seconds"] = seconds
    path.write_text(yaml.safe_dump(settings, sort_keys=False))


def concurrent_trials(root: Path, trials: int, lock_timeout_seconds: float = 300) -> dict[str, Any]:
    set_lock_timeout(root, lock_timeout_seconds)
    output = root / "outputs"
    week = output / "worklists" / W2.isoformat()
    reference = folder_bytes(root / "reference_w2")
    reset(root)
    run(root, "worklists", "--week", W2.isoformat())  # the week exists: a re-run must never hide it
    counts = {"trials": trials, "runs": 0, "succeeded": 0, "waited_for_lock": 0, "refused": 0, "failed": 0}
    missing_polls = polls = 0
    identical = 0
    seconds = []
    for _ in range(trials):
        stop = threading.Event()
        seen = {"missing": 0, "polls": 0}

        def watch(seen: dict[str, int] = seen, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                seen["polls"] += 1
                if not week.is_dir():
                    seen["missing"] += 1

        watcher = threading.Thread(target=watch)
        watcher.start()
        start = time.monotonic()
        processes = [
            subprocess.Popen(
                command(root, "worklists", "--week", W2.isoformat()),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=root,
            )
            for _ in range(2)
        ]
        outputs = [p.communicate()[0] for p in processes]
        seconds.append(time.monotonic() - start)
        stop.set()
        watcher.join()
        missing_polls += seen["missing"]
        polls += seen["polls"]
        for process, text in zip(processes, outputs, strict=True):
            counts["runs"] += 1
            counts["waited_for_lock"] += "waiting for the lock" in text
            if process.returncode == 0:
                counts["succeeded"] += 1
            elif "another riskstrat run is writing" in text:
                counts["refused"] += 1
            else:
                counts["failed"] += 1
                print(text[-3000:], flush=True)
        identical += week_state(week) == "complete" and {
            k: v for k, v in folder_bytes(week).items() if k.endswith(".csv")
        } == {k: v for k, v in reference.items() if k.endswith(".csv")}
        print(json.dumps({**counts, "missing_polls": missing_polls}), flush=True)
    set_lock_timeout(root, 300)
    return {
        "lock_timeout_seconds": lock_timeout_seconds,
        **counts,
        "week_folder_polls": polls,
        "polls_with_no_week_folder": missing_polls,
        "trials_ending_complete_and_identical": identical,
        "seconds_per_trial": round(sum(seconds) / len(seconds), 1),
        "leftovers_after": leftovers(output),
    }


# ----------------------------------------------------------------------------- (c) the swap alone

SWAPPER = """
import errno, sys
from pathlib import Path
from riskstrat import io
if sys.argv[2] == "fallback":
    def unsupported(a, b):
        raise OSError(errno.EINVAL, "no exchange")
    io.exchange_paths = unsupported
errors = 0
for i in range(int(sys.argv[3])):
    try:
        with io.atomic_directory(Path(sys.argv[1])) as staging:
            (staging / "list.csv").write_text(str(i))
    except Exception:
        errors += 1
print(errors)
"""


def swap_trials(root: Path, repeats: int = 300) -> dict[str, Any]:
    results = {}
    for mode in ("exchange", "fallback"):
        folder = root / "swap" / mode
        shutil.rmtree(folder.parent / mode, ignore_errors=True)
        target = folder / "2026-01-12"
        target.mkdir(parents=True)
        (target / "list.csv").write_text("start")
        stop = threading.Event()
        seen = {"missing": 0, "polls": 0}

        def watch(seen: dict[str, int] = seen, stop: threading.Event = stop, target: Path = target) -> None:
            while not stop.is_set():
                seen["polls"] += 1
                if not target.is_dir():
                    seen["missing"] += 1

        watcher = threading.Thread(target=watch)
        watcher.start()
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", SWAPPER, str(target), mode, str(repeats)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for _ in range(2)
        ]
        errors = sum(int(p.communicate()[0].strip() or 0) for p in processes)
        stop.set()
        watcher.join()
        results[mode] = {
            "swaps": 2 * repeats,
            "errors": errors,
            "polls": seen["polls"],
            "polls_with_no_folder": seen["missing"],
            "folder_at_end": target.is_dir(),
        }
        print(json.dumps({mode: results[mode]}), flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/riskstrat-hostile"))
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--refuse-trials", type=int, default=5, help="Extra concurrent trials with lock_timeout_seconds 0."
    )
    parser.add_argument("--only", choices=("kills", "legacy", "concurrent", "swap"), default=None)
    parser.add_argument("--reuse", action="store_true", help="Keep the set-up already in --root.")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    results: dict[str, Any] = {"people": args.people}
    if args.only != "swap" and not (args.reuse and (root / "reference_w2").is_dir()):
        results["set_up_seconds"] = set_up(root, args.people)
        print(json.dumps(results), flush=True)
    if args.only in (None, "swap"):
        results["swap"] = swap_trials(root)
    if args.only in (None, "kills"):
        results["kills"] = kill_trials(root)
    if args.only in (None, "legacy"):
        results["legacy"] = legacy_trials(root)
    if args.only in (None, "concurrent"):
        results["concurrent"] = concurrent_trials(root, args.trials)
        if args.refuse_trials:
            results["concurrent_refusing"] = concurrent_trials(root, args.refuse_trials, 0)
    (root / "hostile_runs.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
