"""GP registrations and demographics (GDPPR style) -> patients: hand-made rows and a round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import code_map, manifest
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import SyntheticSettings

SOURCE = SOURCES["gp_registrations"]
WHITE_BRITISH_2011 = "976631000000101"  # White: English or Welsh or ... British - 2011 census
PAKISTANI_2001 = "92461000000105"  # Pakistani or British Pakistani - 2001 census
FIELDS = (
    "NHS_NUMBER_DEID",
    "YEAR_MONTH_OF_BIRTH",
    "DATE_OF_BIRTH",
    "SEX",
    "ETHNIC",
    "LSOA",
    "PRACTICE",
    "REG_DATE",
    "REG_DATE_END",
    "DATE_OF_DEATH",
)


def raw(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(FIELDS)).astype("string")


ROWS = [
    ("P1", "1950-03", None, "1", WHITE_BRITISH_2011, "E01000001", "A81001", "2001-05-01", None, None),
    ("P2", "194012", None, "F", "J", "E01033769", "A81002", "1999-01-01", "2023-02-01", "2023-02-01"),
    ("P3", None, "1961-07-19", "0", PAKISTANI_2001, "E01099999", "A81001", None, None, None),
    ("P4", "2001-11", None, "2", "XaX0.", "E01000002", "A81002", "2010-01-01", None, None),
    ("P5", "1988-01", None, "X", "W", "E01000003", "A81001", "2015-06-01", None, None),
    # P1's earlier registration, at another practice: the latest one is kept.
    ("P1", "1950-03", None, "1", "A", "E01000005", "B99999", "1990-01-01", "2001-04-30", None),
]


def test_maps_hand_made_registrations():
    output = SOURCE.adapt(raw(ROWS))
    patients = output.tables["patients"].set_index("person_id")
    assert list(patients.index) == ["P1", "P2", "P3", "P4", "P5"]
    assert patients.loc["P1", "practice_code"] == "A81001"  # the latest registration
    assert patients.loc["P1", "lsoa_code"] == "E01000001"
    assert patients["birth_date"].tolist() == [
        pd.Timestamp(d) for d in ("1950-03-01", "1940-12-01", "1961-07-01", "2001-11-01", "1988-01-01")
    ]
    assert patients["sex"].tolist() == ["1", "2", "X", "2", "X"]
    # SNOMED CT concepts and letters; 2021's W (Arab) is S; a Read code is not an ethnicity.
    assert patients["ethnic_category"].tolist()[:3] == ["A", "J", "J"]
    assert pd.isna(patients.loc["P4", "ethnic_category"])
    assert patients.loc["P5", "ethnic_category"] == "S"
    assert patients.loc["P2", "lsoa_code"] == "E01028040"  # 2021 code, best-fit 2011
    assert patients.loc["P3", "lsoa_code"] == "E01099999"  # unknown: kept, counted
    assert patients.loc["P2", "date_of_death"] == pd.Timestamp("2023-02-01")
    assert pd.isna(patients.loc["P1", "registration_end"])
    assert str(patients["birth_date"].dtype) == "datetime64[s]"
    coverage = {c.field: c for c in output.coverage}
    assert (coverage["ETHNIC"].rows, coverage["ETHNIC"].mapped, coverage["ETHNIC"].wrong_system) == (5, 4, 1)
    assert coverage["ETHNIC"].unmapped[0].system == "read"
    assert (coverage["LSOA"].rows, coverage["LSOA"].mapped) == (5, 4)
    assert coverage["LSOA"].unmapped[0].code == "E01099999"
    assert any("1 earlier GP registrations removed" in n for n in output.notes)
    assert any("lsoa_in_imd_lookup" in n for n in output.notes)


def test_ethnicity_list_is_licensed_and_maps_to_contract_letters():
    assert "MIT" in manifest()["snomed_ethnicity"].licence
    letters = set(code_map("snomed_ethnicity").values())
    assert letters == set("ABCDEFGHJKLMNPRSZ")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("YEAR_MONTH_OF_BIRTH", "03/1950", "birth months YYYY-MM"),
        ("REG_DATE", "01/05/2001", "ISO dates"),
        ("DATE_OF_DEATH", "2023-13-45", "ISO dates"),
        ("PRACTICE", None, "a value on every row"),
        ("LSOA", None, "a value on every row"),
    ],
)
def test_malformed_rows_are_rejected_naming_dataset_field_rows_and_ids(field, value, expected):
    frame = raw(ROWS[:3])
    frame.loc[[0, 2], field] = value
    with pytest.raises(ContractError) as caught:
        SOURCE.adapt(frame)
    problem = caught.value.problems[0]
    assert problem.table == "GP registrations and demographics"
    assert problem.column == field
    assert expected in problem.expected
    assert problem.n_rows == 2
    assert problem.examples == ("P1", "P3")


def test_a_missing_birth_month_is_rejected_without_showing_a_date():
    frame = raw(ROWS[:3])
    frame.loc[2, "DATE_OF_BIRTH"] = None
    with pytest.raises(ContractError) as caught:
        SOURCE.adapt(frame)
    problem = caught.value.problems[0]
    assert (problem.column, problem.n_rows, problem.examples) == ("YEAR_MONTH_OF_BIRTH", 1, ("P3",))


def test_round_trip_on_a_synthetic_population():
    population = generate_population(SyntheticSettings(), 2000, seed=5)
    patients = population.tables["patients"]
    national = SOURCE.to_national(population.tables, np.random.default_rng(3))
    assert len(national) > len(patients)  # earlier registrations
    ethnic = national["ETHNIC"].dropna()
    snomed = ethnic.str.fullmatch(r"\d{6,18}")
    assert 0.6 < snomed.mean() < 0.8  # mixed, as real extracts are
    output = SOURCE.adapt(national.astype("string"))
    back = output.tables["patients"].sort_values("person_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, patients.sort_values("person_id").reset_index(drop=True))
    coverage = {c.field: c for c in output.coverage}
    assert coverage["SEX"].share == 1.0 and coverage["LSOA"].share == 1.0
    assert 0.98 < coverage["ETHNIC"].share < 1.0  # noise only where ethnicity is empty
