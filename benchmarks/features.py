"""Feature build time and peak memory on an extract, next to the floor.

The floor is the time DuckDB takes to scan every event table once and group it
by person. Without ``--extract`` a synthetic extract of ``--people`` people
(about 50 event rows each) is generated under ``outputs/benchmark_extract``.

    .venv/bin/python -m benchmarks.features --people 1000000
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


def _measure(mode: str, extract: Path, as_of: str) -> None:
    """Run one measurement in this (fresh) process; print seconds and peak RSS."""
    import ibis

    from riskstrat.features.backends import FEATURE_TABLES, read_extract
    from riskstrat.features.matrix import build_feature_matrix
    from riskstrat.features.settings import FeatureSettings

    started = time.perf_counter()
    if mode == "floor":
        con = ibis.duckdb.connect()
        for name in FEATURE_TABLES:
            if name == "patients":
                continue
            path = extract / f"{name}.parquet"
            con.raw_sql(
                f"SELECT person_id, count(*) FROM read_parquet('{path}') GROUP BY person_id"
            ).fetchall()
        rows = 0
    else:
        settings = FeatureSettings()
        tables = read_extract(ibis.duckdb.connect(), extract)
        rows = len(build_feature_matrix(tables, date.fromisoformat(as_of), settings))
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{seconds:.2f} {peak_mb:.0f} {rows}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extract", type=Path, help="extract folder (Parquet); default: generate one")
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--as-of", default="2024-12-31")
    parser.add_argument("--measure", choices=["floor", "features"], help=argparse.SUPPRESS)
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
    event_rows = sum(
        pq.ParquetFile(extract / f"{name}.parquet").metadata.num_rows for name in EVENTS_PER_PERSON
    )
    results = {}
    for mode in ("floor", "features"):
        # A fresh process per measurement, so peak memory is that step's own.
        output = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.features",
                "--measure",
                mode,
                "--extract",
                str(extract),
                "--as-of",
                args.as_of,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        results[mode] = (float(output[0]), float(output[1]), int(output[2]))
    floor, build = results["floor"], results["features"]
    print(f"extract {extract}: {event_rows:,} event rows; as-of {args.as_of}; cohort rows {build[2]:,}")
    print(f"{'step':<34}{'seconds':>10}{'peak MB':>10}{'x floor':>10}")
    print(f"{'floor (scan + group by person)':<34}{floor[0]:>10.1f}{floor[1]:>10.0f}{1:>10.2f}")
    print(f"{'feature build (DuckDB)':<34}{build[0]:>10.1f}{build[1]:>10.0f}{build[0] / floor[0]:>10.2f}")


if __name__ == "__main__":
    main()
