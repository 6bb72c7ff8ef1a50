"""Tiny synthetic extracts for the feature tests, typed as the data contract says."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import ibis
import pyarrow as pa
import pytest

from riskstrat.features.backends import FEATURE_TABLES, register_frames
from riskstrat.features.settings import FeatureSettings, OutcomeSettings
from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.reference import imd_lookup

AS_OF = date(2024, 12, 31)
_ARROW_TYPES = {
    "string": pa.string(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "integer": pa.int64(),
    "float": pa.float64(),
}


def arrow_table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    """A contract table from row dicts; absent columns are null."""
    schema = pa.schema([pa.field(c.name, _ARROW_TYPES[c.type]) for c in CONTRACT[name].columns])
    return pa.Table.from_pylist([{c: row.get(c) for c in schema.names} for row in rows], schema=schema)


def extract(rows: dict[str, list[dict[str, Any]]]) -> dict[str, pa.Table]:
    """Every feature table, empty unless given rows."""
    return {name: arrow_table(name, rows.get(name, [])) for name in FEATURE_TABLES}


def memtables(frames: dict[str, pa.Table]) -> dict[str, ibis.Table]:
    return {name: ibis.memtable(frame) for name, frame in frames.items()}


def lsoa(index: int) -> str:
    return str(imd_lookup()["lsoa_code"].iloc[index])


def patient(person_id: str, birth_date: date, **extra: Any) -> dict[str, Any]:
    row = {
        "person_id": person_id,
        "birth_date": birth_date,
        "sex": "1",
        "ethnic_category": None,
        "lsoa_code": lsoa(0),
        "practice_code": "A81001",
        "registration_start": date(2010, 1, 1),
    }
    row.update(extra)
    return row


def hand_worked_rows() -> dict[str, list[dict[str, Any]]]:
    """The hand-worked fixture; expected values are in test_hand_worked.py."""
    d = date
    return {
        "patients": [
            patient("p1", d(1950, 6, 15), sex="2", ethnic_category="A", lsoa_code=lsoa(5)),
            patient("p2", d(1990, 1, 1), date_of_death=d(2025, 12, 31)),
            patient("p3", d(1940, 1, 1), date_of_death=AS_OF),
            patient("p5", d(2006, 12, 31), ethnic_category="Z", lsoa_code="W01000001"),
            patient("p6", d(2007, 1, 1)),
            patient("p7", d(1960, 1, 1), registration_end=AS_OF),
            patient("p8", d(1960, 1, 1), registration_start=d(2025, 1, 1)),
            patient("p9", d(1980, 3, 1), registration_end=d(2025, 3, 1), ethnic_category="M"),
        ],
        "gp_diagnoses": [
            {"person_id": "p1", "event_date": d(2015, 1, 1), "condition": "hypertension"},
            {"person_id": "p1", "event_date": d(2016, 1, 1), "condition": "hypertension"},
            {"person_id": "p1", "event_date": AS_OF, "condition": "diabetes"},
            {"person_id": "p1", "event_date": d(2025, 1, 1), "condition": "copd"},
            {"person_id": "p1", "event_date": d(2024, 6, 1), "condition": "falls"},
            {"person_id": "p1", "event_date": d(2024, 1, 1), "condition": "care_home_resident"},
            {"person_id": "p9", "event_date": d(2025, 1, 1), "condition": "care_home_resident"},
            {"person_id": "p9", "event_date": d(2023, 12, 31), "condition": "asthma"},
        ],
        "gp_medications": [
            *[
                {"person_id": "p1", "issue_date": d(2024, 2, 1), "bnf_code": code}
                for code in ("0205051R0", "0206020T0", "0301011R0", "0401020K0", "0601011A0")
            ],
            {"person_id": "p1", "issue_date": d(2024, 3, 1), "bnf_code": "0205051R0"},
            {"person_id": "p1", "issue_date": d(2025, 1, 1), "bnf_code": "0901011A0"},
            # p9: five sections, one of them issued 366 days before T, so not polypharmacy.
            *[
                {"person_id": "p9", "issue_date": d(2024, 2, 1), "bnf_code": code}
                for code in ("0205051R0", "0206020T0", "0301011R0", "0401020K0")
            ],
            {"person_id": "p9", "issue_date": d(2023, 12, 31), "bnf_code": "0601011A0"},
        ],
        "gp_appointments": [
            _appointment("p1", AS_OF, "face_to_face", "attended"),
            _appointment("p1", d(2024, 12, 15), "home_visit", "attended"),
            _appointment("p1", d(2024, 11, 1), "telephone", "dna"),
            _appointment("p1", d(2025, 1, 1), "face_to_face", "attended"),
            _appointment("p9", d(2024, 12, 1), None, None),
        ],
        "community_contacts": [
            {"person_id": "p1", "contact_date": AS_OF, "service": "district_nursing"},
            {"person_id": "p1", "contact_date": d(2024, 10, 1), "service": "district_nursing"},
            {"person_id": "p1", "contact_date": d(2023, 6, 1), "service": "falls"},
            {"person_id": "p1", "contact_date": d(2024, 5, 1), "service": "therapy"},
            {"person_id": "p1", "contact_date": d(2025, 1, 1), "service": "palliative"},
        ],
        "ae_attendances": [
            _ae("a1", "p1", datetime(2024, 12, 31, 23, 59), "ambulance", 2, "admitted"),
            _ae("a2", "p1", datetime(2024, 12, 1, 10, 0), "other", 4, "discharged"),
            *[_ae(f"a1f{i}", "p1", datetime(2025, 1 + i, 1), "other", 3, "discharged") for i in range(5)],
            # p9: four attendances in (T, T + 365] plus one on T (a feature, not an outcome).
            _ae("a9t", "p9", datetime(2024, 12, 31, 12, 0), "other", 3, "discharged"),
            *[_ae(f"a9f{i}", "p9", datetime(2025, 2 + i, 1, 9), "other", 3, "discharged") for i in range(4)],
            _ae("a9late", "p9", datetime(2026, 1, 1, 0, 1), "other", 3, "discharged"),
        ],
        "apc_spells": [
            _spell("s1", "p1", d(2024, 12, 1), d(2024, 12, 10), "21"),
            _spell("s2", "p1", d(2024, 12, 20), d(2025, 1, 5), "2A"),
            _spell("s3", "p1", d(2024, 3, 1), d(2024, 3, 2), "11"),
            _spell("s4", "p1", d(2025, 6, 1), d(2025, 6, 3), "22"),
            _spell("s5", "p5", AS_OF, AS_OF, "21"),
            _spell("s6", "p5", d(2026, 1, 1), d(2026, 1, 2), "21"),
            _spell("s7", "p9", d(2025, 6, 1), d(2025, 6, 2), "24"),
        ],
    }


def _appointment(person_id, day, mode, status):
    return {"person_id": person_id, "appointment_date": day, "mode": mode, "status": status}


def _ae(attendance_id, person_id, arrival, mode, acuity, disposal):
    return {
        "attendance_id": attendance_id,
        "person_id": person_id,
        "arrival_datetime": arrival,
        "department_type": "01",
        "arrival_mode": mode,
        "acuity": acuity,
        "disposal": disposal,
    }


def _spell(spell_id, person_id, admitted, discharged, method):
    return {
        "spell_id": spell_id,
        "person_id": person_id,
        "admission_date": admitted,
        "discharge_date": discharged,
        "admission_method": method,
    }


@pytest.fixture
def feature_settings() -> FeatureSettings:
    return FeatureSettings()


@pytest.fixture
def outcome_settings() -> OutcomeSettings:
    return OutcomeSettings()


@pytest.fixture
def hand_worked() -> dict[str, pa.Table]:
    return extract(hand_worked_rows())


def on_backend(con: Any, frames: dict[str, pa.Table]) -> dict[str, ibis.Table]:
    """Register frames as tables on a backend, typed as the contract says."""
    return register_frames(con, frames)


def random_rows(
    seed: int, n_people: int = 40, events_per_table: int = 150
) -> dict[str, list[dict[str, Any]]]:
    """A small random extract around AS_OF (events from 2021 to 2026), for parity and cache tests."""
    import random
    from datetime import timedelta

    from riskstrat.ingest.contract import ADMISSION_METHOD_CODES, COMMUNITY_SERVICE_CODES
    from riskstrat.ingest.reference import conditions

    rng = random.Random(seed)
    start = date(2021, 1, 1)

    def day() -> date:
        return start + timedelta(days=rng.randrange(0, 5 * 365 + 30))

    people = [f"r{i:03d}" for i in range(n_people)]
    patients = []
    for pid in people:
        row = patient(pid, date(rng.randrange(1925, 2010), rng.randrange(1, 13), 1), sex=rng.choice("129X"))
        row["ethnic_category"] = rng.choice([None, "A", "H", "M", "R", "Z", "99"])
        row["lsoa_code"] = lsoa(rng.randrange(0, 50))
        if rng.random() < 0.1:
            row["date_of_death"] = day()
        if rng.random() < 0.1:
            row["registration_end"] = day()
        patients.append(row)
    names = list(conditions()["condition"])
    rows = {
        "patients": patients,
        "gp_diagnoses": [
            {"person_id": rng.choice(people), "event_date": day(), "condition": rng.choice(names)}
            for _ in range(events_per_table)
        ],
        "gp_medications": [
            {
                "person_id": rng.choice(people),
                "issue_date": day(),
                "bnf_code": f"0{rng.randrange(1, 10)}0{rng.randrange(1, 6)}0",
            }
            for _ in range(events_per_table * 2)
        ],
        "gp_appointments": [
            _appointment(
                rng.choice(people),
                day(),
                rng.choice(["face_to_face", "home_visit", None]),
                rng.choice(["attended", "dna", None]),
            )
            for _ in range(events_per_table)
        ],
        "community_contacts": [
            {
                "person_id": rng.choice(people),
                "contact_date": day(),
                "service": rng.choice(COMMUNITY_SERVICE_CODES),
            }
            for _ in range(events_per_table)
        ],
        "ae_attendances": [
            _ae(
                f"ae{i}",
                rng.choice(people),
                datetime.combine(day(), datetime.min.time()) + timedelta(minutes=rng.randrange(0, 1440)),
                rng.choice(["ambulance", "other", None]),
                rng.choice([1, 2, 3, 4, 5, None]),
                rng.choice(["admitted", "discharged", "left"]),
            )
            for i in range(events_per_table)
        ],
        "apc_spells": [],
    }
    for i in range(events_per_table):
        admitted = day()
        discharged = None if rng.random() < 0.05 else admitted + timedelta(days=rng.choice([0, 1, 3, 8, 20]))
        rows["apc_spells"].append(
            _spell(f"s{i}", rng.choice(people), admitted, discharged, rng.choice(ADMISSION_METHOD_CODES))
        )
    _add_coded_detail(rows, random.Random(seed + 1), people, day)
    return rows


def _add_coded_detail(rows: dict[str, list[dict[str, Any]]], rng: Any, people: list[str], day: Any) -> None:
    """Resolved codes, recorded eFI scores, complaint groups and spell diagnoses, from their own stream."""
    from riskstrat.ingest.contract import COMPLAINT_GROUP_CODES

    for row in rows["gp_diagnoses"]:
        row["status"] = rng.choice([None, None, "diagnosed", "resolved"])
    rows["gp_diagnoses"] += [
        {
            "person_id": rng.choice(people),
            "event_date": day(),
            "condition": "recorded_efi",
            "value": rng.random(),
        }
        for _ in range(30)
    ]
    for row in rows["ae_attendances"]:
        row["complaint_group"] = rng.choice([None, *COMPLAINT_GROUP_CODES])
    pool = ["F001", "I500", "E112", "E119", "N390", "C787", "R54", "S720", "J449", "I10", "K703", "W19"]
    for row in rows["apc_spells"]:
        codes = rng.sample(pool, rng.randrange(0, 5))
        row["diagnoses"] = ";".join(codes) if codes else None
        row["primary_diagnosis"] = codes[0] if codes and rng.random() < 0.5 else rng.choice([None, "R54"])
