"""Time every stage at population scale and write docs/performance.md.

    python -m benchmarks.run [--people 250000 500000 1000000] [--out DIR] [--skip-spark]
        [--spark-people 250000]

For each size, in a fresh folder ``<out>/people_<n>/``, every stage runs in its
own process (:mod:`benchmarks.stages`), so each stage's peak memory is its own:
the larger of the process's maximum resident set size (``os.wait4``) and the
summed resident memory of its process tree sampled from ``/proc`` (which counts
Spark's JVM). Seconds are the stage's own work, timed inside the process
(interpreter start-up and imports are in ``wall_seconds`` in the JSON).

Alongside the stages it measures the feature build against its floor (DuckDB
scanning every event table once, grouped by person) and against the same build
with every shortcut that measured faster (:mod:`benchmarks.feature_shortcuts`),
reasons for listed people
against reasons for everyone, and the feature build on DuckDB against PySpark
local[2]. Results go to ``<out>/benchmark.json`` and, as Markdown tables with
the machine and the targets, to ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from benchmarks.memory import tree_rss_bytes
from riskstrat.io import atomic_path
from riskstrat.pipelines.config import write_relocated_config
from riskstrat.settings import shipped_config_dir

GIB = 1024**3
DEFAULT_SIZES = (250_000, 500_000, 1_000_000)
FULL_SIZE = 1_000_000
"""The size the targets are judged at."""
LARGEST_ICS = 3_200_000
"""The largest integrated care boards' registered population: the scale targets are judged here."""
STAGE_MEMORY_LIMIT_GIB = 16.0
"""Every stage's peak at LARGEST_ICS people on a 24 GiB machine."""
GROWTH_SLACK = 1.1
"""Allowed time growth per unit of population growth: doubling people may take at most 2.2x the time."""
PACKAGES = (
    "pandas",
    "numpy",
    "pyarrow",
    "duckdb",
    "ibis-framework",
    "pyspark",
    "lightgbm",
    "mlflow",
    "prefect",
    "great-expectations",
)
REPO = Path(__file__).resolve().parent.parent
DOCS_FILE = REPO / "docs" / "performance.md"

# Stage processes in run order: (name, benchmarks.stages stage, uses the PySpark config).
STAGE_RUNS: tuple[tuple[str, str, bool], ...] = (
    ("generate", "generate", False),
    ("adapt", "adapt", False),
    ("validate", "validate", False),
    ("features", "features", False),
    ("train", "train", False),
    ("weekly_features", "weekly_features", False),
    ("weekly_score", "weekly_score", False),
    ("weekly_reasons", "weekly_reasons", False),
    ("weekly_export", "weekly_export", False),
    ("weekly", "weekly", False),
    ("reasons_everyone", "reasons_everyone", False),
    ("model_size", "model_size", False),
    ("features_spark", "weekly_features", True),
    ("weekly_spark", "weekly_spark", True),
)

# Rows of the main table: (label, stage process, seconds keys summed, target note).
ROWS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("Generate", "generate", ("generate",), "1M: < 10 min"),
    ("Adapt (raw national files -> contract tables)", "adapt", ("adapt",), "1M: with the weekly run < 2 min"),
    ("Validate", "validate", ("validate",), ""),
    ("Features (training table, 4 as-of dates + outcomes)", "features", ("training_table",), ""),
    ("Train (2 outcomes) + register in MLflow", "train", ("train", "register", "promote"), "1M: < 15 min"),
    ("Weekly: features at the data date", "weekly_features", ("features",), "1M: < 5 min, <= 3x floor"),
    ("Weekly: scoring (champion from MLflow)", "weekly_score", ("scoring",), ""),
    ("Weekly: reasons (listed people only)", "weekly_reasons", ("reasons",), ""),
    (
        "Weekly: export (rows, XLSX/CSV, history)",
        "weekly_export",
        ("assemble", "export", "record_history"),
        "",
    ),
    ("Weekly run, whole (validate -> export)", "weekly", ("*",), "1M: < 10 min, < 8 GiB"),
)


# ----------------------------------------------------------------------------- measuring


def run_process(command: Sequence[str], log_file: Path, interval: float = 0.5) -> dict[str, Any]:
    """Run ``command`` to completion; return its wall seconds, peak memory and exit code."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(interval):
                peak[0] = max(peak[0], tree_rss_bytes(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux; wait4 reports the child and the descendants it waited for.
    peak_bytes = max(usage.ru_maxrss * 1024, peak[0])
    # CPU seconds (user + system, every thread and waited-for child) show the work done when the
    # machine is shared and wall time is not.
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_gib": peak_bytes / GIB,
        "returncode": process.returncode,
    }


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def write_configs(folder: Path, out: Path, spark: bool = False) -> Path:
    """The shipped settings with every path inside ``out`` (and the PySpark backend when ``spark``).

    The extract, truth and practice file always come from the ``outputs`` folder
    beside ``out``, so a PySpark run reads the same population as the DuckDB one.
    """
    population = out.parent / "outputs"
    synthetic = yaml.safe_load((shipped_config_dir() / "synthetic.yaml").read_text()) or {}
    changes: dict[str, dict[str, Any]] = {
        "data.yaml": {
            "extract_dir": str(population / "extract"),
            "truth_dir": str(population / "truth"),
            "extract_date": str(synthetic["extract_date"]),
        },
        "mdts.yaml": {"practices_file": str(population / "reference" / "practices.csv")},
    }
    if spark:
        changes["features.yaml"] = {"backend": "pyspark"}
        # The Spark weekly stage scores with the champions the DuckDB run trained and registered.
        tracking = f"sqlite:///{(population / 'mlflow.db').resolve()}"
        changes["model.yaml"] = {"mlflow": {"tracking_uri": tracking}}
    return write_relocated_config(folder, out, changes)


def run_size(
    people: int,
    out: Path,
    cap: int,
    skip_spark: bool,
    only: Sequence[str] | None = None,
    reuse_population: bool = False,
) -> dict[str, Any]:
    """Every stage process and the floor for one population size, in a fresh folder.

    Args:
        people: Population size.
        out: Folder holding one ``people_<n>`` folder per size.
        cap: Row cap of 'reasons for everyone'.
        skip_spark: Leave out the PySpark stages.
        only: Run only these stages (names of ``STAGE_RUNS`` and ``floor``); None runs every stage.
        reuse_population: Keep a population an earlier run generated in this folder (its
            ``results/generate.json`` is reported again) instead of starting afresh.
    """
    folder = (out / f"people_{people}").resolve()
    generated = folder / "results" / "generate.json"
    reuse = reuse_population and generated.is_file()
    if folder.exists() and not reuse:
        shutil.rmtree(folder)
    configs = write_configs(folder / "configs", folder / "outputs")
    spark_configs = write_configs(folder / "configs_spark", folder / "outputs_spark", spark=True)
    stages: dict[str, Any] = {}
    for name, stage, spark in STAGE_RUNS:
        if spark and skip_spark:
            continue
        if name == "generate" and reuse:
            stages[name] = {**json.loads(generated.read_text()), "reused": True}
            _progress(f"{people:>10,} people: generate (reused from an earlier run)")
            continue
        if only is not None and name not in only:
            earlier = _earlier_result(folder, name) if reuse else None
            if earlier is not None:
                stages[name] = earlier
            continue
        result_file = folder / "results" / f"{name}.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.stages",
            stage,
            "--config",
            str(spark_configs if spark else configs),
            "--result",
            str(result_file),
            "--people",
            str(people),
            "--cap",
            str(cap),
        ]
        _progress(f"{people:>10,} people: {name} ...")
        stages[name] = _finish(
            run_process(command, folder / "logs" / f"{name}.log"), result_file, folder, name
        )
        if name == "adapt" and (only is None or "floor" in only):
            # the extract exists from here (made from the raw files, or generated)
            stages["floor"] = _floor(folder)
    if only is not None and "floor" not in only and reuse and (floor := _earlier_result(folder, "floor")):
        stages["floor"] = floor
    return {"people": people, "folder": str(folder), "stages": stages}


def _earlier_result(folder: Path, name: str) -> dict[str, Any] | None:
    """A stage's result from an earlier run in ``folder`` (with its wall time and peak), else None."""
    path = folder / "results" / f"{name}.json"
    if not path.is_file():
        return None
    result = json.loads(path.read_text())
    return {**result, "reused": True} if "peak_rss_gib" in result else None


def _finish(measured: dict[str, Any], result_file: Path, folder: Path, name: str) -> dict[str, Any]:
    if measured["returncode"] == 0 and result_file.is_file():
        measured.update(json.loads(result_file.read_text()))
        # With the runner's wall time and peak memory, so --reuse-population can report them again.
        _write_json(result_file, measured)
        _progress(f"    {work_seconds(measured, ('*',)):.1f} s, peak {measured['peak_rss_gib']:.2f} GiB")
    else:
        measured["error"] = _tail(folder / "logs" / f"{name}.log")
        _progress(f"    FAILED (exit {measured['returncode']}); see {folder / 'logs' / f'{name}.log'}")
    return measured


def _floor(folder: Path) -> dict[str, Any]:
    """The feature-build floor, the feature sources alone and the build with every shortcut.

    Steps ``floor`` and ``sources`` (benchmarks.features) and ``shortcuts``
    (benchmarks.feature_shortcuts), each measured in its own process.
    """
    extract = folder / "outputs" / "extract"
    _progress("    floor (DuckDB scan + group by person), feature sources alone, every shortcut ...")
    measured: dict[str, Any] = {"seconds": {}, "returncode": 0, "wall_seconds": 0.0, "peak_rss_gib": 0.0}
    modules = {
        "floor": "benchmarks.features",
        "sources": "benchmarks.features",
        "shortcuts": "benchmarks.feature_shortcuts",
    }
    for mode, module in modules.items():
        log = folder / "logs" / f"{mode}.log"
        command = [sys.executable, "-m", module, "--measure", mode, "--extract", str(extract)]
        result = run_process(command, log)
        measured["returncode"] = measured["returncode"] or result["returncode"]
        measured["wall_seconds"] += result["wall_seconds"]
        measured["peak_rss_gib"] = max(measured["peak_rss_gib"], result["peak_rss_gib"])
        try:
            seconds, _, _ = log.read_text().split()[-3:]
            measured["seconds"][mode] = float(seconds)
        except (OSError, ValueError):
            measured["error"] = _tail(log)
    _write_json(folder / "results" / "floor.json", measured)
    return measured


def _progress(message: str) -> None:
    print(message, flush=True)


# ----------------------------------------------------------------------------- machine


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, Python and key package versions, and the date."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_gib": round(ram, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": versions,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ----------------------------------------------------------------------------- pure: figures


def work_seconds(stage: dict[str, Any] | None, keys: Sequence[str]) -> float | None:
    """Seconds of a stage's named steps summed (``*``: every step but set-up); None if it did not run."""
    if not stage or "seconds" not in stage or stage.get("error"):
        return None
    seconds = stage["seconds"]
    if tuple(keys) == ("*",):
        return sum(v for k, v in seconds.items() if k != "setup")
    present = [seconds[k] for k in keys if k in seconds]
    return sum(present) if present else None


def stage_figures(run: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Seconds and peak GiB of every row of the main table, for one size."""
    figures = {}
    for label, stage, keys, _ in ROWS:
        measured = run["stages"].get(stage)
        ok = measured is not None and not measured.get("error")
        figures[label] = {
            "seconds": work_seconds(measured, keys),
            "peak_gib": measured["peak_rss_gib"] if ok else None,
        }
    return figures


def growth_ratios(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Time growth of every row between consecutive sizes, against ``GROWTH_SLACK`` x the size ratio.

    Returns:
        One entry per (row, pair of sizes): ``stage``, ``from``, ``to``, ``ratio``
        (None when a time is missing or zero), ``limit`` and ``ok``.
    """
    runs = sorted(results["runs"], key=lambda r: r["people"])
    out = []
    for smaller, larger in itertools.pairwise(runs):
        a, b = stage_figures(smaller), stage_figures(larger)
        doublings = math.log2(larger["people"] / smaller["people"])
        for label, *_ in ROWS:
            t1, t2 = a[label]["seconds"], b[label]["seconds"]
            m1, m2 = a[label]["peak_gib"], b[label]["peak_gib"]
            ratio = t2 / t1 if t1 and t2 is not None else None
            per_doubling = per_doubling_growth(ratio, doublings)
            out.append(
                {
                    "stage": label,
                    "from": smaller["people"],
                    "to": larger["people"],
                    "ratio": ratio,
                    "per_doubling": per_doubling,
                    "memory_per_doubling": per_doubling_growth(m2 / m1 if m1 and m2 else None, doublings),
                    "limit": 2 * GROWTH_SLACK,
                    "ok": None if per_doubling is None else per_doubling <= 2 * GROWTH_SLACK,
                }
            )
    return out


def per_doubling_growth(ratio: float | None, doublings: float) -> float | None:
    """Growth over ``doublings`` doublings of people as growth per doubling (1M -> 3.2M is 1.68 doublings)."""
    if ratio is None or doublings <= 0:
        return None
    return ratio ** (1 / doublings)


def comparisons(run: dict[str, Any]) -> dict[str, Any]:
    """Floor, reasons and backend comparisons, and the validation share, for one size."""
    stages = run["stages"]
    features = work_seconds(stages.get("weekly_features"), ("features",))
    floor = work_seconds(stages.get("floor"), ("floor",))
    sources = work_seconds(stages.get("floor"), ("sources",))
    shortcuts = work_seconds(stages.get("floor"), ("shortcuts",))
    listed = work_seconds(stages.get("weekly_reasons"), ("reasons",))
    everyone_stage = stages.get("reasons_everyone") or {}
    everyone = work_seconds(everyone_stage, ("reasons_everyone",))
    spark = work_seconds(stages.get("features_spark"), ("features",))
    spark_weekly = stages.get("weekly_spark")
    weekly = stages.get("weekly")
    whole = work_seconds(weekly, ("*",))
    validate = work_seconds(weekly, ("validate",))
    return {
        "features": features,
        "floor": floor,
        "floor_ratio": features / floor if features and floor else None,
        "sources": sources,
        "sources_ratio": sources / floor if sources and floor else None,
        "shortcuts": shortcuts,
        "shortcuts_ratio": shortcuts / floor if shortcuts and floor else None,
        "reasons_listed": listed,
        "reasons_everyone": everyone,
        "reasons_everyone_extrapolated": bool(everyone_stage.get("extrapolated")),
        "reasons_everyone_rows": everyone_stage.get("rows_explained"),
        "reasons_ratio": everyone / listed if everyone and listed else None,
        "spark": spark,
        "spark_peak_gib": (stages.get("features_spark") or {}).get("peak_rss_gib"),
        "duckdb_peak_gib": (stages.get("weekly_features") or {}).get("peak_rss_gib"),
        "spark_ratio": spark / features if spark and features else None,
        "scoring": work_seconds(stages.get("weekly_score"), ("scoring",)),
        "spark_weekly_features": work_seconds(spark_weekly, ("features",)),
        "spark_scoring": work_seconds(spark_weekly, ("scoring",)),
        "spark_reasons": work_seconds(spark_weekly, ("reasons",)),
        "spark_weekly_peak_gib": (spark_weekly or {}).get("peak_rss_gib"),
        "validation_share": validate / whole if validate is not None and whole else None,
    }


def target_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets at 1,000,000 people: measured figure and met / missed / not measured."""
    run = next((r for r in results["runs"] if r["people"] == FULL_SIZE), None)
    figures = stage_figures(run) if run else {}
    extra = comparisons(run) if run else {}

    def seconds(label: str) -> float | None:
        return figures.get(label, {}).get("seconds")

    def gib(label: str) -> float | None:
        return figures.get(label, {}).get("peak_gib")

    label = {stage: row_label for row_label, stage, _, _ in ROWS}
    weekly, train, generate, adapt = label["weekly"], label["train"], label["generate"], label["adapt"]
    from_raw = seconds(weekly) + seconds(adapt) if seconds(weekly) is not None and seconds(adapt) else None
    raw_peak = max(gib(weekly) or 0.0, gib(adapt) or 0.0) if from_raw is not None else None
    targets = [
        ("Weekly run, 1M people: time", seconds(weekly), 600.0, "s", "< 10 min"),
        ("Weekly run, 1M people: peak memory", gib(weekly), 8.0, "GiB", "< 8 GiB"),
        (
            "Weekly run from raw national files (adapt + weekly), 1M people: time",
            from_raw,
            120.0,
            "s",
            "< 2 min",
        ),
        ("Weekly run from raw national files, 1M people: peak memory", raw_peak, 8.0, "GiB", "< 8 GiB"),
        ("Training, 1M people", seconds(train), 900.0, "s", "< 15 min"),
        ("Generate, 1M people", seconds(generate), 600.0, "s", "< 10 min"),
        ("Weekly features, 1M people", extra.get("features"), 300.0, "s", "< 5 min"),
        ("Weekly features / floor, 1M people", extra.get("floor_ratio"), 3.0, "x", "<= 3x"),
    ]
    checks = []
    for name, value, limit, unit, target in targets:
        met = None if value is None else value <= limit
        checks.append({"target": name, "value": value, "unit": unit, "goal": target, "met": met})
    checks += largest_ics_checks(results)
    growth = [g for g in growth_ratios(results) if g["ok"] is not None]
    checks.append(
        {
            "target": "Time growth per doubling (every stage)",
            "value": max((g["ratio"] for g in growth), default=None),
            "unit": "x (worst)",
            "goal": f"<= {GROWTH_SLACK * 2:.1f}x",
            "met": None if not growth else all(g["ok"] for g in growth),
        }
    )
    return checks


def largest_ics_checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The largest-ICS targets at 3,200,000 people: weekly run, training, and every stage's peak memory."""
    run = next((r for r in results["runs"] if r["people"] == LARGEST_ICS), None)
    if run is None:
        return []
    figures = stage_figures(run)
    label = {stage: row_label for row_label, stage, _, _ in ROWS}
    weekly, train = figures[label["weekly"]], figures[label["train"]]
    peaks = {row: f["peak_gib"] for row, f in figures.items() if f["peak_gib"] is not None}
    worst = max(peaks, key=peaks.__getitem__) if peaks else None
    targets = [
        ("Weekly run, 3.2M people: time", weekly["seconds"], 300.0, "s", "< 5 min"),
        ("Training, 3.2M people: time", train["seconds"], 1800.0, "s", "< 30 min"),
        ("Training, 3.2M people: peak memory", train["peak_gib"], STAGE_MEMORY_LIMIT_GIB, "GiB", "< 16 GiB"),
        (
            f"Every stage, 3.2M people: peak memory (worst: {worst})"
            if worst
            else "Every stage, 3.2M people",
            peaks.get(worst) if worst else None,
            STAGE_MEMORY_LIMIT_GIB,
            "GiB",
            "< 16 GiB",
        ),
    ]
    return [
        {
            "target": name,
            "value": value,
            "unit": unit,
            "goal": goal,
            "met": None if value is None else value < limit,
        }
        for name, value, limit, unit, goal in targets
    ]


def memory_breakdown(run: dict[str, Any]) -> list[tuple[str, str, float, float]]:
    """Where memory goes: (stage, step, seconds, peak GiB while the step ran) for every timed step of one size."""
    out = []
    for name, stage in run["stages"].items():
        peaks = stage.get("step_peak_gib") or {}
        for step, peak in peaks.items():
            out.append((name, step, (stage.get("seconds") or {}).get(step, 0.0), peak))
    return out


# ----------------------------------------------------------------------------- pure: Markdown


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


def render_markdown(results: dict[str, Any]) -> str:
    """The performance page: machine, stage table, growth, the three comparisons and the targets."""
    runs = sorted(results["runs"], key=lambda r: r["people"])
    machine = results["machine"]
    sizes = [r["people"] for r in runs]
    lines = ["# Performance", ""]
    if not sizes or max(sizes) < DEFAULT_SIZES[0]:
        lines += [
            "> **Smoke run only.** This table is from a small run that checks every stage of the benchmark",
            "> runs; at this size fixed costs (loading models, Great Expectations set-up) dominate, so it says",
            "> nothing about scale or the targets. The full run (250,000, 500,000 and 1,000,000 people,",
            "> `make benchmark`, i.e. `python -m benchmarks.run`) replaces this page.",
            "",
        ]
    lines += [
        f"Measured {machine['date']} with `{results.get('command', 'python -m benchmarks.run')}`.",
        "",
        "| Machine | |",
        "|---|---|",
        f"| CPU | {machine['cpu']} |",
        f"| Cores available | {machine['cores']} |",
        f"| RAM | {machine['ram_gib']} GiB |",
        f"| OS | {machine['os']} |",
        f"| Python | {machine['python']} |",
        "| Packages | " + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()) + " |",
        "",
        "Every stage runs in its own process on a freshly generated synthetic population. Seconds are",
        "the stage's own work (interpreter start-up and imports excluded; they are in `benchmark.json`);",
        "peak memory is the process's maximum resident set, including any child process (Spark's JVM).",
        "",
        "## Stages",
        "",
    ]
    header = "| Stage | " + " | ".join(f"{n:,} people: s | GiB" for n in sizes) + " | Target |"
    lines += [header, "|---|" + "---:|---:|" * len(sizes) + "---|"]
    figures = [stage_figures(r) for r in runs]
    for label, _, _, target in ROWS:
        cells = []
        for f in figures:
            cells += [_num(f[label]["seconds"]), _num(f[label]["peak_gib"], 2)]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")
    failed = [
        f"{r['people']:,} people: {name} (exit {s.get('returncode')})"
        for r in runs
        for name, s in r["stages"].items()
        if s.get("error") is not None
    ]
    if failed:
        lines += ["", "Failed stages: " + "; ".join(failed) + "."]
    growth = growth_ratios(results)
    if growth:
        pairs = sorted({(g["from"], g["to"]) for g in growth})
        lines += [
            "",
            "## Time growth between sizes",
            "",
            "Time at the larger size / time at the smaller, and as growth per doubling of people "
            f"(ratio ^ (1 / doublings); 1M -> 3.2M is 1.68 doublings). The limit is {2 * GROWTH_SLACK:.1f}x per "
            "doubling; memory's growth per doubling follows (2.0x is linear).",
            "",
            "| Stage | " + " | ".join(f"{a:,} -> {b:,}" for a, b in pairs) + " |",
            "|---|" + "---:|" * len(pairs),
        ]
        by_stage: dict[str, dict[tuple[int, int], dict[str, Any]]] = {}
        for g in growth:
            by_stage.setdefault(g["stage"], {})[(g["from"], g["to"])] = g
        for label, *_ in ROWS:
            cells = []
            for pair in pairs:
                g = by_stage.get(label, {}).get(pair)
                if g is None or g["ratio"] is None:
                    cells.append("-")
                else:
                    mark = "" if g["ok"] else " **over**"
                    memory = g.get("memory_per_doubling")
                    memory_text = "" if memory is None else f"; memory {memory:.2f}x"
                    cells.append(
                        f"{g['ratio']:.2f}x ({g['per_doubling']:.2f}x per doubling{memory_text}){mark}"
                    )
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    extra = [comparisons(r) for r in runs]
    lines += [
        "",
        "## Feature build against its floor",
        "",
        "The floor is DuckDB scanning every event table once, grouped by person, reading the columns the",
        "features read (`benchmarks/features.py`); the build is the weekly feature matrix at the data date",
        "as the weekly flow makes it (read Parquet, run the query on DuckDB, sort by person in Arrow,",
        "write the cached matrix from Arrow). The extract's hash, the cache key, is timed apart: the weekly",
        "flow takes it from the validation gate. Target: within 3x the floor.",
        "",
        "*Sources alone* is the features' own work and nothing else: the cohort and each source's",
        "per-person aggregates as separate queries, fetched as Arrow, with nothing joined, sorted or written.",
        "However the matrix is assembled, the build costs at least that.",
        "",
        "*Every shortcut* is the same matrix built with every shortcut that measured faster, shipped or",
        "not: window counts packed into one sum, no sort by person, a larger cache file",
        "(`benchmarks/feature_shortcuts.py` says why each is not shipped). It shows how near the target",
        "this engine comes for these features.",
        "",
        "| People | Floor s | Sources alone s | x floor | Feature build s | x floor | Every shortcut s | x floor |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, e in zip(sizes, extra, strict=True):
        lines.append(
            f"| {n:,} | {_num(e['floor'])} | {_num(e['sources'])} | {_num(e['sources_ratio'], 2)} | "
            f"{_num(e['features'])} | {_num(e['floor_ratio'], 2)} | "
            f"{_num(e['shortcuts'])} | {_num(e['shortcuts_ratio'], 2)} |"
        )
    cap_note = ""
    if any(e["reasons_everyone_extrapolated"] for e in extra):
        cap_note = (
            f" Where marked *, 'everyone' was measured on the first {results.get('cap', 0):,} people and "
            "extrapolated linearly to the whole population (TreeSHAP costs the same per row)."
        )
    lines += [
        "",
        "## Reasons: listed people only against everyone",
        "",
        "TreeSHAP `pred_contrib` for the people on the lists (what the weekly run does) against the whole",
        "scored population, for the same outcomes." + cap_note,
        "",
        "| People | Listed only s | Everyone s | Everyone / listed |",
        "|---:|---:|---:|---:|",
    ]
    for n, e in zip(sizes, extra, strict=True):
        star = "*" if e["reasons_everyone_extrapolated"] else ""
        lines.append(
            f"| {n:,} | {_num(e['reasons_listed'], 2)} | {_num(e['reasons_everyone'])}{star} | "
            f"{_num(e['reasons_ratio'], 0)} |"
        )
    lines += [
        "",
        "## Features on DuckDB against PySpark local[2]",
        "",
        "The weekly feature matrix at the data date (`features.backend`); the same Ibis code on both.",
        "",
        "| People | DuckDB s | DuckDB GiB | PySpark s | PySpark GiB (with JVM) | PySpark / DuckDB |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, e in zip(sizes, extra, strict=True):
        if e["spark"] is None and results.get("skip_spark"):
            lines.append(f"| {n:,} | {_num(e['features'])} | {_num(e['duckdb_peak_gib'], 2)} | skipped | | |")
            continue
        lines.append(
            f"| {n:,} | {_num(e['features'])} | {_num(e['duckdb_peak_gib'], 2)} | {_num(e['spark'])} | "
            f"{_num(e['spark_peak_gib'], 2)} | {_num(e['spark_ratio'], 2)} |"
        )
    lines += [
        "",
        "## Weekly scoring on one machine against Spark local[2]",
        "",
        "Scoring everyone with the champions (both columns include loading them from MLflow): pandas on",
        "the driver, against per-partition scoring on Spark (`mapInPandas`, models broadcast) with only the",
        "scores collected. Spark features include writing the matrix as Parquet parts; reasons are for the listed people.",
        "",
        "| People | Scoring (pandas) s | Spark features s | Spark scoring s | Spark reasons s | Spark GiB (with JVM) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, e in zip(sizes, extra, strict=True):
        if e.get("spark_scoring") is None and results.get("skip_spark"):
            lines.append(f"| {n:,} | {_num(e.get('scoring'), 2)} | skipped | | | |")
            continue
        lines.append(
            f"| {n:,} | {_num(e.get('scoring'), 2)} | {_num(e.get('spark_weekly_features'))} | "
            f"{_num(e.get('spark_scoring'), 2)} | {_num(e.get('spark_reasons'), 2)} | "
            f"{_num(e.get('spark_weekly_peak_gib'), 2)} |"
        )
    lines += [
        "",
        "## Validation's share of the weekly run",
        "",
        "| People | Share of the whole weekly run |",
        "|---:|---:|",
    ]
    for n, e in zip(sizes, extra, strict=True):
        share = "-" if e["validation_share"] is None else f"{100 * e['validation_share']:.0f}%"
        lines.append(f"| {n:,} | {share} |")
    lines += model_size_section(runs)
    if runs:
        largest = runs[-1]
        breakdown = memory_breakdown(largest)
        if breakdown:
            lines += [
                "",
                f"## Where memory goes at {largest['people']:,} people",
                "",
                "Each stage's timed steps, with the peak resident memory of the stage's process tree (Spark's JVM",
                "included) sampled every 0.2 s while the step ran. A step's peak includes what earlier steps of",
                "the same stage still hold.",
                "",
                "| Stage | Step | s | Peak GiB |",
                "|---|---|---:|---:|",
            ]
            lines += [
                f"| {stage} | {step} | {_num(seconds)} | {_num(peak, 2)} |"
                for stage, step, seconds, peak in breakdown
            ]
    lines += [
        "",
        "## Targets (2 cores, 24 GiB)",
        "",
        "| Target | Measured | Goal | Verdict |",
        "|---|---:|---|---|",
    ]
    for check in target_checks(results):
        value = "-" if check["value"] is None else f"{check['value']:,.1f} {check['unit']}"
        lines.append(f"| {check['target']} | {value} | {check['goal']} | {_verdict(check['met'])} |")
    notes = [
        f"{r['people']:,} people: {note}"
        for r in runs
        for note in (r["stages"].get("train") or {}).get("notes", [])
    ]
    if notes:
        lines += ["", "Notes: " + "; ".join(notes) + "."]
    return "\n".join(lines) + "\n"


def model_size_section(runs: list[dict[str, Any]]) -> list[str]:
    """Markdown lines: boosting rounds with and without the ``n_estimators`` budget, and the AUROC it costs."""
    rows = []
    for run in runs:
        stage = run["stages"].get("model_size") or {}
        for outcome, m in (stage.get("outcomes") or {}).items():
            low, high = m["difference_ci"]
            rows.append(
                f"| {run['people']:,} | {outcome} | {m['budget']:,} | {m['rounds_uncapped']:,} | "
                f"{m['rounds_capped']:,} | {m['auroc_uncapped']:.4f} | {m['auroc_capped']:.4f} | "
                f"{m['difference']:+.4f} ({low:+.4f} to {high:+.4f}) | {m['test_events']:,} / {m['test_rows']:,} |"
            )
    if not rows:
        return []
    return [
        "",
        "## Model size: the boosting-round budget",
        "",
        "Early stopping asks for more boosting rounds as the population grows, and training and scoring",
        "time grow with rounds x rows. `n_estimators` in `configs/model.yaml` caps the rounds. Here each",
        "outcome is refitted with up to 5,000 rounds, early-stopped on the validation rows",
        "(`benchmarks/stages.py` `model_size`); the test AUROC with the budget is compared with the AUROC",
        "without it on the same test rows and bootstrap resamples (paired 95% interval of the difference).",
        "",
        "| People | Outcome | Budget | Rounds chosen, no budget | Rounds chosen, budget | AUROC, no budget | "
        "AUROC, budget | Difference (95% CI) | Test events / rows |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|",
        *rows,
    ]


def write_docs(markdown: str, path: Path = DOCS_FILE) -> Path:
    """Write the page atomically (readers never see half a table)."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(markdown, encoding="utf-8")
    return path


def _write_json(path: Path, payload: Any) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")


# ----------------------------------------------------------------------------- command


def main(argv: list[str] | None = None) -> int:
    """Run every size, write ``<out>/benchmark.json`` and ``docs/performance.md``."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmark")
    parser.add_argument("--skip-spark", action="store_true", help="Do not time features on PySpark.")
    parser.add_argument(
        "--spark-people",
        type=int,
        nargs="+",
        default=None,
        help="Time the PySpark stages at these sizes only (default: every size).",
    )
    parser.add_argument(
        "--reasons-cap",
        type=int,
        default=200_000,
        help="Explain at most this many people for 'reasons for everyone'; extrapolate beyond (0: no cap).",
    )
    parser.add_argument("--docs", type=Path, default=DOCS_FILE, help="Markdown page to write.")
    parser.add_argument(
        "--stages",
        nargs="+",
        default=None,
        help="Run only these stages (e.g. adapt validate features train weekly; 'floor' for the floor).",
    )
    parser.add_argument(
        "--reuse-population",
        action="store_true",
        help="Keep a population generated by an earlier run in <out>/people_<n>/ (generation at 3.2M takes ~20 min).",
    )
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv)
    results: dict[str, Any] = {
        "command": command.strip(),
        "machine": machine_info(),
        "cap": args.reasons_cap,
        "skip_spark": args.skip_spark or args.spark_people is not None,
        "runs": [],
    }
    for people in sorted(args.people):
        skip_spark = args.skip_spark or (args.spark_people is not None and people not in args.spark_people)
        results["runs"].append(
            run_size(people, out, args.reasons_cap, skip_spark, args.stages, args.reuse_population)
        )
        # Written after every size, so a long run that stops still leaves what it measured.
        _write_json(out / "benchmark.json", results)
        write_docs(render_markdown(results), args.docs)
    print(f"\nwrote {out / 'benchmark.json'} and {args.docs}")
    failed = any(s.get("error") is not None for r in results["runs"] for s in r["stages"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
