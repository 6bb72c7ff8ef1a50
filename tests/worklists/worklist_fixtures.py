"""Small synthetic population, features and tiny LightGBM models for the worklist tests."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import ibis
import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from riskstrat.features.backends import connect_duckdb, register_frames
from riskstrat.ingest.contract import CONTRACT
from riskstrat.pipelines.weekly import ListedContextFn, listed_context_reader, population_status_task
from riskstrat.worklists.settings import MdtSettings

AS_OF = date(2025, 12, 31)
PRACTICES = pd.DataFrame(
    {
        "practice_code": ["P00001", "P00002", "P00003"],
        "practice_name": ["Riverside Surgery", "Hill Practice", "Southgate Health Centre"],
        "neighbourhood": ["North", "North", "South"],
        "lad_code": ["E06000001"] * 3,
        "list_size": ["9000", "7000", "8000"],
    }
)
FEATURES = [
    "age",
    "sex_female",
    "ae_attendances_30d",
    "ae_attendances_90d",
    "ae_attendances_365d",
    "emergency_admissions_90d",
    "emergency_admissions_365d",
    "efi_score",
    "efi_category",
    "ltc_count",
    "ltc_diabetes",
    "ltc_copd",
    "ltc_heart_failure",
    "care_home",
    "community_district_nursing_90d",
    "community_falls_90d",
    "days_since_last_ae",
]


def make_features(n: int, seed: int, prefix: str = "PID") -> pd.DataFrame:
    """A feature matrix shaped like features/ builds it, with audit columns."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 100, n)
    ae365 = rng.poisson(0.3 + age / 80, n)
    ae90 = rng.binomial(ae365, 0.3)
    ae30 = rng.binomial(ae90, 0.4)
    ea365 = rng.poisson(0.1 + age / 150, n)
    ea90 = rng.binomial(ea365, 0.3)
    diabetes, copd, hf = (rng.random(n) < p for p in (0.15, 0.1, 0.05 + age / 1000))
    efi = np.clip(rng.normal(0.05 + age / 400, 0.08, n), 0, 1).round(3)
    frame = pd.DataFrame(
        {
            "person_id": [f"{prefix}{i:05d}" for i in range(n)],
            "as_of": AS_OF,
            "age": age,
            "sex_female": rng.integers(0, 2, n),
            "ae_attendances_30d": ae30,
            "ae_attendances_90d": ae90,
            "ae_attendances_365d": ae365,
            "emergency_admissions_90d": ea90,
            "emergency_admissions_365d": ea365,
            "efi_score": efi,
            "efi_category": np.digitize(efi, [0.12, 0.24, 0.36], right=True),
            "ltc_count": diabetes.astype(int) + copd + hf + rng.integers(0, 3, n),
            "ltc_diabetes": diabetes.astype(int),
            "ltc_copd": copd.astype(int),
            "ltc_heart_failure": hf.astype(int),
            "care_home": (rng.random(n) < 0.03).astype(int),
            "community_district_nursing_90d": rng.poisson(0.3, n),
            "community_falls_90d": rng.poisson(0.05, n),
            "days_since_last_ae": np.where(ae365 > 0, rng.integers(0, 365, n), np.nan),
        }
    )
    frame["sex"] = np.where(frame["sex_female"] == 1, "2", "1")
    frame["age_band"] = pd.cut(
        age, [17, 29, 44, 64, 74, 84, 200], labels=["18-29", "30-44", "45-64", "65-74", "75-84", "85+"]
    ).astype(str)
    frame["practice_code"] = rng.choice(PRACTICES["practice_code"], n)
    logit_ea = -3.5 + 0.03 * (age - 50) + 0.6 * ea365 + 0.3 * ae365 + 4 * efi + 0.8 * hf
    logit_fa = -4 + 0.9 * ae365 + 0.5 * ae30 + 0.2 * ea365
    frame["emergency_admission"] = (rng.random(n) < 1 / (1 + np.exp(-logit_ea))).astype(int)
    frame["frequent_attendance"] = (rng.random(n) < 1 / (1 + np.exp(-logit_fa))).astype(int)
    return frame


@pytest.fixture(scope="session")
def boosters() -> dict[str, lgb.Booster]:
    """One tiny LightGBM model per outcome, trained on a synthetic frame."""
    train = make_features(3000, seed=1, prefix="TRN")
    params = {
        "objective": "binary",
        "num_leaves": 8,
        "learning_rate": 0.1,
        "verbose": -1,
        "seed": 1,
        "deterministic": True,
        "num_threads": 1,
        "min_data_in_leaf": 20,
    }
    return {
        outcome: lgb.train(params, lgb.Dataset(train[FEATURES], train[outcome]), num_boost_round=40)
        for outcome in ("emergency_admission", "frequent_attendance")
    }


@pytest.fixture()
def features() -> pd.DataFrame:
    """Today's feature matrix for 600 people over three practices."""
    return make_features(600, seed=7)


def contributions_for(boosters: dict[str, lgb.Booster]):
    """A contributions function like models/explain.py: TreeSHAP for given rows, features as columns."""

    def contributions(outcome: str, rows: pd.DataFrame) -> pd.DataFrame:
        values = boosters[outcome].predict(rows[FEATURES], pred_contrib=True)
        frame = pd.DataFrame(values[:, :-1], columns=FEATURES, index=rows["person_id"].astype(str).to_numpy())
        frame["bias"] = values[:, -1]
        frame.index.name = "person_id"
        return frame

    return contributions


def score(features: pd.DataFrame, boosters: dict[str, lgb.Booster]) -> pd.DataFrame:
    """The scored population with all-clear status flags."""
    scored = features[["person_id", "practice_code", "age"]].copy()
    for outcome, booster in boosters.items():
        scored[f"p_{outcome}"] = booster.predict(features[FEATURES])
    scored["deceased"] = False
    scored["deregistered"] = False
    scored["on_caseload"] = False
    scored["caseload_team"] = pd.Series(pd.NA, index=scored.index, dtype="string")
    scored["type1_opt_out"] = False
    return scored


@pytest.fixture()
def scored(features, boosters) -> pd.DataFrame:
    return score(features, boosters)


PERCENTILE_BANDS = {
    "basis": "percentile",
    "bands": [
        {"name": "Very high", "min": 99.5},
        {"name": "High", "min": 98},
        {"name": "Moderate", "min": 95},
    ],
}
"""Bands on the ICS-wide percentile (the tests of that basis; the shipped default bands on probability)."""


@pytest.fixture()
def mdt_settings(tmp_path) -> MdtSettings:
    """Two MDTs: North by neighbourhood (emergency admission), South HIU by practice code."""
    path = tmp_path / "practices.csv"
    PRACTICES.to_csv(path, index=False)
    return MdtSettings.model_validate(
        {
            "practices_file": str(path),
            "default_mdt": {"capacity_people": 20},
            "risk_bands": PERCENTILE_BANDS,
            "mdts": [
                {"name": "North virtual ward", "neighbourhood": "North"},
                {
                    "name": "South HIU service",
                    "practices": ["P00003"],
                    "capacity_people": 15,
                    "outcome": "frequent_attendance",
                },
            ],
        }
    )


_ARROW_TYPES = {
    "string": pa.string(),
    "date": pa.date32(),
    "datetime": pa.timestamp("us"),
    "integer": pa.int64(),
    "float": pa.float64(),
}


def _arrow(name: str, frame: pd.DataFrame) -> pa.Table:
    """A contract frame as Arrow: given columns as they are, empty or missing ones typed as the contract says."""
    columns = {}
    for column in CONTRACT[name].columns:
        given = pa.array(frame[column.name], from_pandas=True) if column.name in frame.columns else None
        if given is not None and not pa.types.is_null(given.type):
            columns[column.name] = given
        elif given is not None or column.required:
            columns[column.name] = pa.nulls(len(frame), _ARROW_TYPES[column.type])
    return pa.table(columns)


def on_engine(frames: Mapping[str, pd.DataFrame | None]) -> dict[str, ibis.Table]:
    """Contract frames as typed tables on an in-memory DuckDB, as the weekly run reads the extract.

    A frame that is None is a table missing from the extract; required columns a test
    does not need are added empty.
    """
    present = {name: _arrow(name, frame) for name, frame in frames.items() if frame is not None}
    return register_frames(connect_duckdb(), present)


def status_of(
    patients: pd.DataFrame,
    caseload: pd.DataFrame | None = None,
    opt_outs: pd.DataFrame | None = None,
    as_of: date = AS_OF,
) -> pd.DataFrame:
    """Every patient's status at ``as_of``, computed by the weekly run's own step."""
    tables = on_engine({"patients": patients, "caseload": caseload, "opt_outs": opt_outs})
    return population_status_task.fn(tables, as_of)


def context_of(frames: Mapping[str, pd.DataFrame | None], as_of: date = AS_OF) -> ListedContextFn | None:
    """The weekly run's listed-context hook on these event tables (None when there are none)."""
    return listed_context_reader(on_engine(frames), as_of)


WALSALL, DUDLEY = "E08000030", "E08000027"
"""Two metropolitan districts: each is its own social-services authority."""


def lsoa_in(local_authority: str) -> str:
    """An LSOA of ``local_authority`` from the shipped IMD 2019 lookup."""
    from riskstrat.ingest.reference import imd_lookup

    lookup = imd_lookup()
    return str(lookup.loc[lookup["lad_code"] == local_authority, "lsoa_code"].iloc[0])


def _event(person, la, period, kind, start, end=None, client="service_user", service=None, component=None):
    return {
        "person_id": person,
        "la_code": la,
        "reporting_period_start": date.fromisoformat(period),
        "event_type": kind,
        "event_start_date": date.fromisoformat(start),
        "event_end_date": date.fromisoformat(end) if end else None,
        "client_type": client,
        "service_type": service,
        "service_component": component,
    }


def social_care_frames(as_of: date = AS_OF, listed_lsoa: Mapping[str, str] | None = None) -> dict:
    """``patients`` and ``social_care_events`` for a social worker's view at ``as_of`` (31 Dec 2025).

    Walsall sent every quarter from Jan-Mar 2025; Dudley's Apr-Jun 2025 return is missing.
    A (Walsall) has had home care since Mar 2025 (two successive packages) and finished
    reablement 30 days before the data date; B (Walsall) is a carer who asked for support
    11 days before; C lives in Dudley; D (Walsall) has no record; F (Walsall) moved from
    residential to nursing care on 1 Dec; Z is never listed (his events fill the quarters).
    ``listed_lsoa`` overrides where the listed people live (person -> LSOA).
    """
    events = [
        _event(
            "A",
            WALSALL,
            "2025-04-01",
            "service",
            "2025-03-10",
            "2025-06-30",
            service="long_term_community",
            component="home_care",
        ),
        _event(
            "A",
            WALSALL,
            "2025-07-01",
            "service",
            "2025-07-01",
            None,
            service="long_term_community",
            component="home_care",
        ),
        _event(
            "A",
            WALSALL,
            "2025-10-01",
            "service",
            "2025-11-10",
            "2025-12-01",
            service="short_term_reablement",
            component="reablement",
        ),
        _event(
            "B",
            WALSALL,
            "2025-04-01",
            "service",
            "2025-05-01",
            None,
            client="carer",
            service="short_term_other",
            component="respite",
        ),
        _event("B", WALSALL, "2025-10-01", "request", "2025-12-20", "2025-12-20"),
        _event("C", DUDLEY, "2025-01-01", "assessment", "2024-11-02", "2024-11-02"),
        _event(
            "F",
            WALSALL,
            "2025-01-01",
            "service",
            "2024-06-01",
            "2025-11-30",
            service="long_term_residential",
            component="residential",
        ),
        _event(
            "F",
            WALSALL,
            "2025-10-01",
            "service",
            "2025-12-01",
            None,
            service="long_term_nursing",
            component="nursing",
        ),
        _event("F", WALSALL, "2025-10-01", "assessment", "2026-01-02", "2026-01-02"),  # after the data date
    ]
    for quarter in ("2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01"):
        events.append(_event("Z", WALSALL, quarter, "review", quarter, quarter))
        if quarter != "2025-04-01":
            events.append(
                _event(
                    "Z",
                    DUDLEY,
                    quarter,
                    "service",
                    quarter,
                    None,
                    service="long_term_community",
                    component="home_care",
                )
            )
    homes = {"A": WALSALL, "B": WALSALL, "C": DUDLEY, "D": WALSALL, "F": WALSALL, "Z": WALSALL}
    lsoas = {person: lsoa_in(la) for person, la in homes.items()} | dict(listed_lsoa or {})
    patients = pd.DataFrame(
        {"person_id": list(lsoas), "practice_code": "P00001", "lsoa_code": list(lsoas.values())}
    )
    return {"patients": patients, "social_care_events": pd.DataFrame(events)}
