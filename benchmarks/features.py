"""Feature build time and peak memory on an extract, next to the floor.

Each measurement runs in a fresh process (imports done before the clock starts),
the floor first, then the build, repeated ``--repeat`` times in turn; the best
time of each is reported (the machine may be shared), with its CPU seconds and
the process's peak resident memory.

- floor: DuckDB scans every event table the features read, once each, reading the
  columns the features read from it, groups it by person (one cheap aggregate per
  column, so every column is decoded) and fetches the result as Arrow. The same
  with ``person_id`` only (the narrowest scan) is shown beside it.
- sources: the features' own work and nothing else. The cohort and each source's
  per-person aggregates (:func:`riskstrat.features.matrix.feature_sources`) run as
  separate DuckDB queries, each fetched as Arrow; nothing is joined, sorted or
  written. However the matrix is assembled, the build costs at least this.
- build: what the weekly run does for the feature matrix at the data date
  (:func:`riskstrat.pipelines.features.build_feature_file` without its cache hit):
  read the Parquet tables, run the feature expression on DuckDB, fetch it as Arrow,
  sort it by person and write the cache file (Parquet, from Arrow) into a temporary
  folder. Hashing the extract folder (the cache key) is shown apart and not counted:
  the weekly flow has that hash from the validation gate.

Without ``--extract`` a synthetic extract of ``--people`` people (about 50 event
rows each) is generated under ``outputs/benchmark_extract``.

    .venv/bin/python -m benchmarks.features --people 1000000
    .venv/bin/python -m benchmarks.features --extract /path/to/outputs/extract
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from riskstrat.ingest.contract import (
    ADMISSION_METHOD_CODES,
    COMMUNITY_SERVICE_CODES,
    EMERGENCY_ADMISSION_METHODS,
)
from riskstrat.ingest.reference import conditions, imd_lookup

START = date(2021, 1, 1)
DAYS = (date(2025, 12, 31) - START).days + 1
EVENTS_PER_PERSON = {  # about 50 rows per person in all
    "gp_diagnoses": 8,
    "gp_appointments": 12,
    "gp_medications": 20,
    "community_contacts": 4,
    "ae_attendances": 3,
    "apc_spells": 2,
}


def _dates(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.datetime64(START, "D") + rng.integers(0, DAYS, n).astype("timedelta64[D]")


def generate(folder: Path, n_people: int, seed: int = 0) -> Path:
    """Write a crude synthetic extract (Parquet, typed as the contract says) for timing only."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = np.char.add("P", np.arange(n_people).astype(str))
    lsoas = imd_lookup()["lsoa_code"].to_numpy()
    birth = np.datetime64("1925-01-01", "D") + rng.integers(0, 85 * 365, n_people).astype("timedelta64[D]")
    death = np.where(rng.random(n_people) < 0.03, _dates(rng, n_people), np.datetime64("NaT"))
    patients = pa.table(
        {
            "person_id": ids,
            "birth_date": pa.array(birth, pa.date32()),
            "sex": rng.choice(["1", "2"], n_people),
            "ethnic_category": rng.choice(["A", "H", "M", "R", "Z", "99"], n_people),
            "lsoa_code": rng.choice(lsoas, n_people),
            "practice_code": rng.choice([f"A8{i:04d}" for i in range(150)], n_people),
            "registration_start": pa.array(np.full(n_people, np.datetime64("2015-01-01", "D")), pa.date32()),
            "registration_end": pa.array(np.full(n_people, np.datetime64("NaT", "D")), pa.date32()),
            "date_of_death": pa.array(death.astype("datetime64[D]"), pa.date32()),
        }
    )
    pq.write_table(patients, folder / "patients.parquet")
    # Skewed activity: a few people have most events, as in real data.
    weights = rng.gamma(0.5, 2.0, n_people)
    weights /= weights.sum()

    def people(n: int) -> np.ndarray:
        return ids[np.sort(rng.choice(n_people, n, p=weights))]

    def n_rows(name: str) -> int:
        return EVENTS_PER_PERSON[name] * n_people

    n = n_rows("gp_diagnoses")
    pq.write_table(
        pa.table(
            {
                "person_id": people(n),
                "event_date": pa.array(_dates(rng, n), pa.date32()),
                "condition": rng.choice(conditions()["condition"].to_numpy(), n),
            }
        ),
        folder / "gp_diagnoses.parquet",
    )
    n = n_rows("gp_appointments")
    pq.write_table(
        pa.table(
            {
                "person_id": people(n),
                "appointment_date": pa.array(_dates(rng, n), pa.date32()),
                "mode": rng.choice(["face_to_face", "telephone", "home_visit", "online"], n),
                "status": rng.choice(["attended", "attended", "attended", "dna"], n),
            }
        ),
        folder / "gp_appointments.parquet",
    )
    n = n_rows("gp_medications")
    sections = np.array([f"{c:02d}{s:02d}01" for c in range(1, 16) for s in range(1, 10)])
    pq.write_table(
        pa.table(
            {
                "person_id": people(n),
                "issue_date": pa.array(_dates(rng, n), pa.date32()),
                "bnf_code": rng.choice(sections, n),
            }
        ),
        folder / "gp_medications.parquet",
    )
    n = n_rows("community_contacts")
    pq.write_table(
        pa.table(
            {
                "person_id": people(n),
                "contact_date": pa.array(_dates(rng, n), pa.date32()),
                "service": rng.choice(COMMUNITY_SERVICE_CODES, n),
                "mode": rng.choice(["face_to_face", "telephone"], n),
            }
        ),
        folder / "community_contacts.parquet",
    )
    n = n_rows("ae_attendances")
    arrival = _dates(rng, n).astype("datetime64[s]") + rng.integers(0, 86400, n).astype("timedelta64[s]")
    pq.write_table(
        pa.table(
            {
                "attendance_id": np.char.add("AE", np.arange(n).astype(str)),
                "person_id": people(n),
                "arrival_datetime": pa.array(arrival.astype("datetime64[us]"), pa.timestamp("us")),
                "department_type": rng.choice(["01", "03"], n),
                "arrival_mode": rng.choice(["ambulance", "other"], n),
                "acuity": rng.integers(1, 6, n),
                "disposal": rng.choice(["admitted", "discharged", "referred", "left"], n),
            }
        ),
        folder / "ae_attendances.parquet",
    )
    n = n_rows("apc_spells")
    admitted = _dates(rng, n)
    methods = np.concatenate([np.repeat(EMERGENCY_ADMISSION_METHODS, 3), ADMISSION_METHOD_CODES])
    pq.write_table(
        pa.table(
            {
                "spell_id": np.char.add("S", np.arange(n).astype(str)),
                "person_id": people(n),
                "admission_date": pa.array(admitted, pa.date32()),
                "discharge_date": pa.array(
                    admitted + rng.geometric(0.2, n).astype("timedelta64[D]"), pa.date32()
                ),
                "admission_method": rng.choice(methods, n),
            }
        ),
        folder / "apc_spells.parquet",
    )
    return folder


FLOOR_COLUMNS: dict[str, tuple[str, ...]] = {
    "gp_diagnoses": ("event_date", "condition"),
    "gp_appointments": ("appointment_date", "mode", "status"),
    "gp_medications": ("issue_date", "bnf_code"),
    "community_contacts": ("contact_date", "service"),
    "ae_attendances": ("arrival_datetime", "arrival_mode", "acuity", "disposal"),
    "apc_spells": ("spell_id", "admission_date", "discharge_date", "admission_method"),
}
"""Event tables the weekly feature build reads, with the columns it reads besides ``person_id``."""


def floor_queries(extract: Path, columns: bool = True) -> list[str]:
    """One scan-and-group-by-person query per event table the features read.

    With ``columns``, each column the features read gets ``any_value`` (the cheapest
    aggregate that still decodes it; ``count(column)`` is answered from Parquet
    statistics when a column has no nulls); without, the query counts rows per person.
    """
    queries = []
    for name, read in FLOOR_COLUMNS.items():
        path = extract / f"{name}.parquet"
        aggregates = ", ".join(f"any_value({c})" for c in read) if columns else "count(*)"
        queries.append(f"SELECT person_id, {aggregates} FROM read_parquet('{path}') GROUP BY person_id")
    return queries


def _measure(mode: str, extract: Path, as_of: str) -> None:
    """Run one measurement in this (fresh) process; print seconds, CPU seconds, peak RSS and rows."""
    import tempfile

    import duckdb
    import ibis.backends.duckdb  # noqa: F401  (imported before the clock, as duckdb is for the floor)

    from riskstrat.features.backends import connect, read_extract
    from riskstrat.features.matrix import build_feature_table, feature_sources
    from riskstrat.features.settings import FeatureSettings
    from riskstrat.io import folder_snapshot_hash, write_arrow_parquet
    from riskstrat.pipelines.features import feature_file_path

    settings = FeatureSettings()
    when = date.fromisoformat(as_of)
    rows = 0
    steps: dict[str, float] = {}
    if mode == "features":
        # The weekly flow has the extract's hash (the cache key) from the validation gate:
        # hashed here off the clock, and shown apart.
        clock = time.perf_counter()
        snapshot = folder_snapshot_hash(extract)
        steps["hash"] = time.perf_counter() - clock
    with tempfile.TemporaryDirectory() as output_dir:
        cpu_started = cpu_seconds()
        started = time.perf_counter()
        if mode in ("floor", "floor-ids"):
            con = duckdb.connect()
            for query in floor_queries(extract, columns=mode == "floor"):
                rows += con.sql(query).to_arrow_table().num_rows
        elif mode == "sources":
            cohort, aggregates = feature_sources(read_extract(connect(settings), extract), when, settings)
            rows = cohort.to_pyarrow().num_rows
            for aggregate in aggregates:
                aggregate.to_pyarrow()
        else:
            # The body of build_feature_file (pipelines/features.py), timed step by step.
            clock = started
            target = feature_file_path(Path(output_dir), snapshot, when, settings)
            matrix = build_feature_table(read_extract(connect(settings), extract), when, settings)
            steps["build"], clock = time.perf_counter() - clock, time.perf_counter()
            write_arrow_parquet(matrix, target)
            steps["write"] = time.perf_counter() - clock
            rows = matrix.num_rows
        seconds = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    detail = " ".join(f"{k}={v:.2f}" for k, v in steps.items())
    print(f"cpu={cpu:.3f} {detail}".rstrip())
    # Last line as benchmarks.run reads it: seconds, peak MB, rows.
    print(f"{seconds:.3f} {peak_mb:.0f} {rows}")


def cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_measurement(
    mode: str, extract: Path, as_of: str, module: str = "benchmarks.features"
) -> tuple[float, float, float, int, str]:
    """Run ``module --measure mode`` in a fresh process: seconds, CPU seconds, peak MB, rows, steps."""
    command = [sys.executable, "-m", module, "--measure", mode, "--extract", str(extract)]
    output = subprocess.run(
        [*command, "--as-of", as_of], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    seconds, peak_mb, rows = output[-1].split()
    cpu, *steps = output[-2].split()
    return float(seconds), float(cpu.removeprefix("cpu=")), float(peak_mb), int(rows), " ".join(steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extract", type=Path, help="extract folder (Parquet); default: generate one")
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--as-of", default="2025-12-31", help="as-of date (default: the data date)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is kept")
    parser.add_argument(
        "--measure", choices=["floor", "floor-ids", "sources", "features"], help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure, args.extract, args.as_of)
        return
    extract = args.extract
    if extract is None:
        extract = Path("outputs") / f"benchmark_extract_{args.people}"
        if not (extract / "apc_spells.parquet").is_file():
            print(f"generating {args.people:,} people under {extract} ...", flush=True)
            generate(extract, args.people)
    event_rows = sum(pq.ParquetFile(extract / f"{name}.parquet").metadata.num_rows for name in FLOOR_COLUMNS)
    modes = ("floor", "floor-ids", "sources", "features")
    runs: dict[str, list[tuple[float, float, float, int, str]]] = {mode: [] for mode in modes}
    for _ in range(args.repeat):
        for mode in modes:  # in turn, so a busy spell on a shared machine hits all of them alike
            runs[mode].append(run_measurement(mode, extract, args.as_of))
    best = {mode: min(results) for mode, results in runs.items()}
    floor = best["floor"][0]
    print(
        f"extract {extract}: {event_rows:,} event rows; as-of {args.as_of}; cohort rows {best['features'][3]:,}"
    )
    print(
        f"best of {args.repeat}; seconds of every run: "
        + "; ".join(f"{mode} " + ", ".join(f"{r[0]:.2f}" for r in results) for mode, results in runs.items())
    )
    print(f"{'step':<44}{'seconds':>9}{'CPU s':>8}{'peak MB':>9}{'x floor':>9}")
    labels = {
        "floor": "floor (scan columns read + group by person)",
        "floor-ids": "floor, person_id only",
        "sources": "feature sources alone (no join/sort/write)",
        "features": "feature build (weekly, DuckDB)",
    }
    for mode in modes:
        seconds, cpu, peak, _, _ = best[mode]
        print(f"{labels[mode]:<44}{seconds:>9.2f}{cpu:>8.2f}{peak:>9.0f}{seconds / floor:>9.2f}")
    print(f"feature build x floor (person_id only): {best['features'][0] / best['floor-ids'][0]:.2f}")
    print(f"feature build steps (best run): {best['features'][4]}")


if __name__ == "__main__":
    main()
