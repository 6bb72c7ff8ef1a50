"""Benchmark the validation gate: wall time and peak memory of validating an extract folder.

Usage:
    .venv/bin/python benchmarks/validate.py [EXTRACT_DIR] [--people N] [--events-per-person E]
        [--chunk-size ROWS] [--out DIR] [--no-keep-tables] [--extract-date YYYY-MM-DD]
        [--backend pandas|pyspark] [--spark-master local[2]] [--driver-memory 4g] [--json FILE]

With EXTRACT_DIR (e.g. outputs/extract) that folder is validated; otherwise a
valid extract of N people with about E event rows per person is built in a
temporary folder first (not timed). Peak memory is the process's maximum
resident set size (ru_maxrss), which includes the typed tables kept; CPU
seconds are the process's user and system time (all threads), which show the
work done when the machine is shared and wall time is not.

With ``--backend pyspark`` the gate runs on a Spark session
(:mod:`riskstrat.ingest.validation_spark`) and the driver's memory is reported in
two parts: the Python process (ru_maxrss, as above) and the Spark JVM (its peak
resident set, VmHWM). In local mode that JVM is the driver and the executor at
once; the executors' Python workers are sampled separately (the largest sum of
their resident sets seen, every half second).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from riskstrat.ingest import contract as c
from riskstrat.ingest.reference import conditions, imd_lookup
from riskstrat.ingest.validation_settings import ValidationSettings
from riskstrat.pipelines.validate import run_validation

EXTRACT_DATE = pd.Timestamp("2025-12-31")
START = pd.Timestamp("2021-01-01")
# Share of event rows per table (about 50 rows per person in total at the default).
EVENT_SHARES = {
    "gp_diagnoses": 0.16,
    "gp_appointments": 0.24,
    "gp_medications": 0.44,
    "community_contacts": 0.08,
    "ae_attendances": 0.04,
    "apc_spells": 0.02,
    "caseload": 0.01,
    "opt_outs": 0.01,
}


def _choice(rng: np.random.Generator, values: tuple, n: int) -> np.ndarray:
    return np.asarray(values, dtype=object)[rng.integers(0, len(values), n)].astype(str)


def _days(rng: np.random.Generator, n: int, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    span = (end - start).days
    return pd.Series(start + pd.to_timedelta(rng.integers(0, span + 1, n), unit="D")).astype("datetime64[us]")


def build_extract(folder: Path, n_people: int, events_per_person: float, seed: int = 1) -> dict[str, int]:
    """Write a valid extract of ``n_people`` to ``folder`` as Parquet; return rows per table."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.char.add("P", np.arange(n_people).astype(str).astype(object).astype(str))
    lsoas = imd_lookup()["lsoa_code"].to_numpy()
    birth = _days(rng, n_people, pd.Timestamp("1920-01-01"), pd.Timestamp("2020-01-01"))
    death = _days(rng, n_people, pd.Timestamp("2025-12-01"), EXTRACT_DATE).where(rng.random(n_people) < 0.01)
    patients = pd.DataFrame(
        {
            "person_id": ids,
            "birth_date": birth,
            "sex": _choice(rng, ("1", "2"), n_people),
            "ethnic_category": _choice(rng, c.ETHNIC_CATEGORY_CODES[:-2], n_people),
            "lsoa_code": lsoas[rng.integers(0, len(lsoas), n_people)],
            "practice_code": _choice(rng, ("M00001", "M00002", "M00003"), n_people),
            "registration_start": _days(rng, n_people, pd.Timestamp("2000-01-01"), START),
            "registration_end": pd.Series(pd.NaT, index=range(n_people), dtype="datetime64[us]"),
            "date_of_death": death,
        }
    )
    patients.to_parquet(folder / "patients.parquet", index=False)
    counts = {"patients": n_people}
    total = int(n_people * events_per_person)
    vocabulary = tuple(conditions()["condition"])
    for name, share in EVENT_SHARES.items():
        n = max(int(total * share), 1)
        people = rng.integers(0, n_people, n)
        person_id = ids[people]
        # Events end before the earliest death date used above, so none is after a death.
        when = _days(rng, n, START, pd.Timestamp("2025-11-27"))  # + 3 days of a spell stays before any death
        if name == "gp_diagnoses":
            frame = pd.DataFrame(
                {
                    "person_id": person_id,
                    "event_date": when,
                    "condition": _choice(rng, vocabulary, n),
                    "snomed_code": "123456",
                }
            )
        elif name == "gp_appointments":
            frame = pd.DataFrame(
                {
                    "person_id": person_id,
                    "appointment_date": when,
                    "mode": _choice(rng, c.APPOINTMENT_MODE_CODES, n),
                    "status": _choice(rng, c.APPOINTMENT_STATUS_CODES, n),
                }
            )
        elif name == "gp_medications":
            frame = pd.DataFrame(
                {
                    "person_id": person_id,
                    "issue_date": when,
                    "bnf_code": _choice(rng, ("0205", "0601", "0407"), n),
                }
            )
        elif name == "community_contacts":
            frame = pd.DataFrame(
                {
                    "person_id": person_id,
                    "contact_date": when,
                    "service": _choice(rng, c.COMMUNITY_SERVICE_CODES, n),
                    "mode": _choice(rng, c.COMMUNITY_MODE_CODES, n),
                }
            )
        elif name == "ae_attendances":
            arrival = when + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")
            frame = pd.DataFrame(
                {
                    "attendance_id": np.char.add("A", np.arange(n).astype(str)),
                    "person_id": person_id,
                    "arrival_datetime": arrival,
                    "departure_datetime": arrival + pd.Timedelta(hours=4),
                    "department_type": _choice(rng, c.DEPARTMENT_TYPE_CODES, n),
                    "arrival_mode": _choice(rng, c.ARRIVAL_MODE_CODES, n),
                    "acuity": rng.integers(1, 6, n),
                    "disposal": _choice(rng, c.DISPOSAL_CODES, n),
                }
            )
        elif name == "apc_spells":
            frame = pd.DataFrame(
                {
                    "spell_id": np.char.add("S", np.arange(n).astype(str)),
                    "person_id": person_id,
                    "admission_date": when,
                    "discharge_date": when + pd.Timedelta(days=3),
                    "admission_method": _choice(rng, c.ADMISSION_METHOD_CODES, n),
                    "primary_diagnosis": "I10",
                    "discharge_destination": _choice(rng, c.DISCHARGE_DESTINATION_CODES, n),
                    "discharge_method": _choice(rng, c.DISCHARGE_METHOD_CODES, n),
                }
            )
        elif name == "caseload":
            frame = pd.DataFrame(
                {
                    "person_id": person_id,
                    "team": "VW North",
                    "start_date": when,
                    "end_date": pd.Series(pd.NaT, index=range(n), dtype="datetime64[us]"),
                }
            )
        else:
            frame = pd.DataFrame({"person_id": person_id, "type": _choice(rng, c.OPT_OUT_TYPES, n)})
        frame.to_parquet(folder / f"{name}.parquet", index=False)
        counts[name] = n
    return counts


def _status_kib(pid: int, field: str) -> int:
    """A memory field of ``/proc/<pid>/status`` in KiB (0 if the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the JVM's Python daemon and workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found


class _WorkerSampler(threading.Thread):
    """Samples the summed resident set of the processes below the JVM (Python workers)."""

    def __init__(self, jvm_pid: int) -> None:
        super().__init__(daemon=True)
        self.jvm_pid, self.peak_kib, self.stopped = jvm_pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            total = sum(_status_kib(p, "VmRSS") for p in _descendants(self.jvm_pid))
            self.peak_kib = max(self.peak_kib, total)


def _spark(master: str, driver_memory: str) -> Any:
    """A Spark session as the flows make it, with the driver (in local mode also executor) heap given."""
    from pyspark.sql import SparkSession

    from riskstrat.features.backends import spark_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers import riskstrat from this venv
    SparkSession.builder.master(master).config("spark.driver.memory", driver_memory).config(
        "spark.sql.session.timeZone", "UTC"
    ).config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false").getOrCreate()
    return spark_session(master)  # the active session, with the flows' settings checked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("extract_dir", nargs="?", type=Path)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--events-per-person", type=float, default=50.0)
    parser.add_argument("--chunk-size", type=int, default=ValidationSettings().chunk_size)
    parser.add_argument("--out", type=Path, default=None, help="Output folder (default: a temporary one).")
    parser.add_argument("--extract-date", type=pd.Timestamp, default=EXTRACT_DATE)
    parser.add_argument("--backend", choices=("pandas", "pyspark"), default="pandas")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g", help="Spark driver heap (local mode: executor too).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures to this JSON file.")
    parser.add_argument(
        "--no-keep-tables",
        action="store_true",
        help="Do not keep typed tables (as every flow's gate and `riskstrat validate` run it).",
    )
    args = parser.parse_args(argv)
    keep_tables = not args.no_keep_tables
    console = Console()
    with tempfile.TemporaryDirectory(prefix="riskstrat-bench-") as tmp:
        extract_dir = args.extract_dir
        build_seconds = 0.0
        if extract_dir is None:
            extract_dir = Path(tmp) / "extract"
            started = time.perf_counter()
            build_extract(extract_dir, args.people, args.events_per_person)
            build_seconds = time.perf_counter() - started
        output_dir = args.out or Path(tmp) / "outputs"
        settings = ValidationSettings(chunk_size=args.chunk_size)
        session, jvm_pid, sampler = None, 0, None
        if args.backend == "pyspark":
            session = _spark(args.spark_master, args.driver_memory)
            jvm_pid = int(session._jvm.java.lang.ProcessHandle.current().pid())
            sampler = _WorkerSampler(jvm_pid)
            sampler.start()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        rss_before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        started = time.perf_counter()
        report = run_validation(
            extract_dir,
            output_dir,
            settings,
            extract_date=args.extract_date.date(),
            keep_tables=keep_tables,
            spark=session,
        )
        seconds = time.perf_counter() - started
        jvm_peak_mb = _status_kib(jvm_pid, "VmHWM") / 1024 if jvm_pid else 0.0
        workers_peak_mb = 0.0
        if sampler is not None:
            sampler.stopped.set()
            sampler.join()
            workers_peak_mb = sampler.peak_kib / 1024
        usage = resource.getrusage(resource.RUSAGE_SELF)
        peak_mb = usage.ru_maxrss / 1024
        cpu_seconds = usage.ru_utime + usage.ru_stime - cpu_before
        table = Table(title=f"Validation of {extract_dir}")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_row("people (patients rows)", f"{report.row_counts.get('patients', 0):,}")
        table.add_row("event rows", f"{sum(v for k, v in report.row_counts.items() if k != 'patients'):,}")
        table.add_row("backend", args.backend + (f" ({args.spark_master})" if session is not None else ""))
        table.add_row("chunk size", f"{args.chunk_size:,}")
        table.add_row("typed tables kept", "all" if keep_tables else "none")
        table.add_row("checks run", f"{len(report.results):,}")
        table.add_row("critical failures", str(len(report.critical_failures)))
        table.add_row("warnings", str(len(report.warnings)))
        table.add_row("build extract (s, not timed)", f"{build_seconds:.1f}")
        table.add_row("validation wall time (s)", f"{seconds:.1f}")
        table.add_row("validation CPU time (s, all threads)", f"{cpu_seconds:.1f}")
        table.add_row("peak RSS before (MB)", f"{rss_before / 1024:,.0f}")
        table.add_row("peak RSS (MB)" + (", driver Python" if session is not None else ""), f"{peak_mb:,.0f}")
        if session is not None:
            table.add_row("peak RSS (MB), Spark JVM (driver + local executor)", f"{jvm_peak_mb:,.0f}")
            table.add_row("peak RSS (MB), executors' Python workers (sampled)", f"{workers_peak_mb:,.0f}")
        console.print(table)
        if args.json is not None:
            figures = {
                "backend": args.backend,
                "spark_master": args.spark_master if session is not None else None,
                "people": report.row_counts.get("patients", 0),
                "event_rows": sum(v for k, v in report.row_counts.items() if k != "patients"),
                "checks": len(report.results),
                "critical_failures": len(report.critical_failures),
                "warnings": len(report.warnings),
                "seconds": round(seconds, 1),
                "cpu_seconds_driver_python": round(cpu_seconds, 1),
                "peak_rss_mb_driver_python": round(peak_mb),
                "peak_rss_mb_spark_jvm": round(jvm_peak_mb),
                "peak_rss_mb_python_workers": round(workers_peak_mb),
                "results": [r.to_dict() for r in report.results],
            }
            args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
        for result in report.critical_failures + report.warnings:
            console.print(f"[{result.severity}] {result.problem().describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
