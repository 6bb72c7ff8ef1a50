"""Emergency Care Data Set (ECDS) -> ae_attendances: hand-made rows with known answers and a round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import code_map, codelist, manifest
from riskstrat.ingest.contract import COMPLAINT_GROUP_CODES, CONTRACT
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.base import read_raw
from riskstrat.ingest.sources.ecds import disposal
from riskstrat.ingest.synthetic import complaints
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import SyntheticSettings

SOURCE = SOURCES["ecds"]
FIELDS = SOURCE.field_names

# Codes from the NHS Data Dictionary ECDS reference sets (see ingest/codelists/manifest.yaml).
EMERGENCY_ROAD_AMBULANCE = "1048031000000100"  # LTHTR group Ambulance
WALK_IN = "1048071000000103"
ACUITY_1, ACUITY_3, ACUITY_5 = "1064891000000107", "1064901000000108", "1077251000000100"
TREATMENT_COMPLETED = "182992009"
LEFT_BEFORE_TREATMENT = "1066321000000107"
DIED_IN_DEPARTMENT = "75004002"
STREAMED_TO_GP = "1077021000000100"
TO_WARD = "306706006"
TO_HOME = "306689006"
TO_MORTUARY = "305398007"
TO_OTHER_HOSPITAL = "19712007"
CHEST_PAIN, SELF_HARM, FALLS = "29857009", "248062006", "161898004"
ASTHMA, COPD = "195967001", "13645005"  # ECDS diagnosis refset members


def raw(rows: list[dict]) -> pd.DataFrame:
    """Raw ECDS rows as text columns; fields a row leaves out are empty."""
    return pd.DataFrame([{f: row.get(f) for f in FIELDS} for row in rows]).astype("string")


def attendance(ident: str, **fields: str | None) -> dict:
    row = {
        "EC_Ident": ident,
        "Der_Pseudo_NHS_Number": "P" + ident,
        "Arrival_Date": "2024-03-01",
        "Arrival_Time": "10:15:00",
        "EC_Discharge_Status_SNOMED_CT": TREATMENT_COMPLETED,
        "Discharge_Destination_SNOMED_CT": TO_HOME,
    }
    row.update(fields)
    return row


ROWS = [
    attendance(
        "1",
        Arrival_Time="23:50",
        EC_Departure_Date="2024-03-02",
        EC_Departure_Time="01:05:30.0000000",
        EC_Department_Type="1",
        EC_Arrival_Mode_SNOMED_CT=EMERGENCY_ROAD_AMBULANCE,
        EC_Acuity_SNOMED_CT=ACUITY_1,
        Discharge_Destination_SNOMED_CT=TO_WARD,
        EC_Chief_Complaint_SNOMED_CT=CHEST_PAIN,
        Der_EC_Diagnosis_All=f"{ASTHMA},{COPD}",
    ),
    attendance(
        "2",
        EC_Department_Type="03",
        EC_Arrival_Mode_SNOMED_CT=WALK_IN,
        EC_Acuity_SNOMED_CT="9999999999",  # not an acuity code
        EC_Discharge_Status_SNOMED_CT=LEFT_BEFORE_TREATMENT,
        EC_Chief_Complaint_SNOMED_CT=SELF_HARM,
        Der_EC_Diagnosis_All="R07.4",  # ICD-10 in a SNOMED CT field
    ),
    attendance(
        "3",
        Arrival_Time=None,
        EC_Department_Type="01",
        EC_Acuity_SNOMED_CT=ACUITY_3 + ".0",  # went through a float column
        EC_Discharge_Status_SNOMED_CT=DIED_IN_DEPARTMENT,
        Discharge_Destination_SNOMED_CT=None,
        EC_Chief_Complaint_SNOMED_CT="XaBcD",  # a Read code: recorded, unknown -> other
    ),
    attendance("4", EC_Discharge_Status_SNOMED_CT=STREAMED_TO_GP, EC_Acuity_SNOMED_CT=ACUITY_5),
    attendance("5", EC_Discharge_Status_SNOMED_CT=None, Discharge_Destination_SNOMED_CT=TO_OTHER_HOSPITAL),
    attendance(
        "6", EC_Discharge_Status_SNOMED_CT=None, Discharge_Destination_SNOMED_CT=None, EC_Department_Type="X1"
    ),
]


@pytest.fixture(scope="module")
def adapted():
    return SOURCE.adapt(raw(ROWS))


def test_maps_hand_made_attendances(adapted):
    table = adapted.tables["ae_attendances"]
    assert list(table.columns) == list(CONTRACT["ae_attendances"].column_names)
    ae = table.set_index("attendance_id")
    assert ae.loc["1", "person_id"] == "P1"
    assert ae["department_type"].tolist()[:3] == ["01", "03", "01"]
    assert ae.loc["6", "department_type"] == "X1"  # left for the gate to reject
    assert ae.loc["1", "arrival_mode"] == "ambulance" and ae.loc["2", "arrival_mode"] == "other"
    assert pd.isna(ae.loc["3", "arrival_mode"])
    assert ae["acuity"].tolist() == [1, pd.NA, 3, 5, pd.NA, pd.NA]
    assert ae["disposal"].tolist() == ["admitted", "left", "died", "referred", "referred", "discharged"]
    assert ae.loc["1", "complaint_group"] == "chest_pain"
    assert ae.loc["2", "complaint_group"] == "self_harm"
    assert ae.loc["3", "complaint_group"] == "other"
    assert ae["complaint_group"].isna().sum() == 3
    assert any(
        "1 ECDS attendances had no recognised discharge status or destination" in n for n in adapted.notes
    )


def test_joins_dates_and_times(adapted):
    ae = adapted.tables["ae_attendances"].set_index("attendance_id")
    assert ae.loc["1", "arrival_datetime"] == pd.Timestamp("2024-03-01 23:50:00")
    assert ae.loc["1", "departure_datetime"] == pd.Timestamp("2024-03-02 01:05:30")
    assert ae.loc["3", "arrival_datetime"] == pd.Timestamp("2024-03-01 00:00:00")  # no time: midnight
    assert pd.isna(ae.loc["2", "departure_datetime"])
    assert str(ae["arrival_datetime"].dtype) == "datetime64[s]"
    assert str(ae["acuity"].dtype) == "Int64"


def test_coverage_names_unmapped_and_wrong_system_codes(adapted):
    coverage = {c.field: c for c in adapted.coverage}
    acuity = coverage["EC_Acuity_SNOMED_CT"]
    assert (acuity.rows, acuity.mapped) == (4, 3)
    assert [(u.code, u.rows) for u in acuity.unmapped] == [("9999999999", 1)]
    complaint = coverage["EC_Chief_Complaint_SNOMED_CT"]
    assert (complaint.rows, complaint.mapped, complaint.wrong_system) == (3, 2, 1)
    assert complaint.unmapped[0].system == "read"
    diagnosis = coverage["Der_EC_Diagnosis_All"]
    assert (diagnosis.rows, diagnosis.mapped, diagnosis.wrong_system) == (3, 2, 1)  # counted per code
    assert (diagnosis.unmapped[0].code, diagnosis.unmapped[0].system) == ("R07.4", "icd10")
    assert {c.codelist for c in adapted.coverage} == {
        "ecds_arrival_mode",
        "ecds_acuity",
        "ecds_discharge_status",
        "ecds_discharge_destination",
        "ecds_chief_complaint",
        "ecds_diagnosis",
    }


def test_disposal_rule_priority():
    status = pd.Series(["left", "discharged", None, "referred", "died", None], dtype="string")
    destination = pd.Series(
        ["admitted", "admitted", "referred", "discharged", "admitted", None], dtype="string"
    )
    result, unknown = disposal(status, destination)
    assert result.tolist() == ["left", "admitted", "referred", "referred", "died", "discharged"]
    assert unknown == 1


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("Arrival_Time", "25:10", "times HH:MM[:SS]"),
        ("Arrival_Time", "noon", "times HH:MM[:SS]"),
        ("Arrival_Date", "01/03/2024", "ISO dates"),
        ("EC_Departure_Date", "2024-13-01", "ISO dates"),
    ],
)
def test_malformed_dates_and_times_are_rejected_with_examples(field, value, expected):
    rows = [attendance("1"), attendance("2", **{field: value}), attendance("3", **{field: value})]
    if field == "EC_Departure_Date":
        for row in rows:
            row.setdefault("EC_Departure_Date", "2024-03-01")
            row["EC_Departure_Time"] = "12:00"
        rows[1][field] = rows[2][field] = value
    with pytest.raises(ContractError) as raised:
        SOURCE.adapt(raw(rows))
    problem = raised.value.problems[0]
    assert problem.table == "Emergency Care Data Set (ECDS)"
    assert problem.column == field
    assert problem.n_rows == 2
    assert list(problem.examples) == ["2", "3"]  # attendance IDs, never the date itself
    assert expected in problem.expected


def test_empty_required_values_are_rejected():
    with pytest.raises(ContractError) as raised:
        SOURCE.adapt(raw([attendance("1"), attendance("2", Der_Pseudo_NHS_Number=None)]))
    problem = raised.value.problems[0]
    assert (problem.column, problem.n_rows, list(problem.examples)) == ("Der_Pseudo_NHS_Number", 1, ["2"])


def test_a_missing_field_is_rejected_naming_it(tmp_path: Path):
    frame = raw([attendance("1")]).drop(columns=["Arrival_Date"])
    path = tmp_path / "ecds.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ContractError) as raised:
        read_raw(path, SOURCE)
    problem = raised.value.problems[0]
    assert "Emergency Care Data Set (ECDS)" in problem.table and problem.column == "Arrival_Date"


def test_a_renamed_local_column_is_read(tmp_path: Path):
    frame = raw([attendance("1")]).rename(columns={"EC_Acuity_SNOMED_CT": "Acuity_Code"})
    frame["EC_Acuity_SNOMED_CT"] = pd.NA  # ignored: the renamed column is read
    frame = frame.drop(columns=["EC_Acuity_SNOMED_CT"])
    frame.loc[0, "Acuity_Code"] = ACUITY_1
    path = tmp_path / "ecds.csv"
    frame.to_csv(path, index=False)
    table = SOURCE.adapt(read_raw(path, SOURCE, {"EC_Acuity_SNOMED_CT": "Acuity_Code"})).tables[
        "ae_attendances"
    ]
    assert table["acuity"].tolist() == [1]


def test_code_lists_cover_the_contract_vocabularies():
    for name in ("ecds_arrival_mode", "ecds_acuity", "ecds_discharge_status", "ecds_discharge_destination"):
        assert "MIT" in manifest()[name].licence
    assert set(code_map("ecds_arrival_mode").values()) == {"ambulance", "other"}
    assert sorted(code_map("ecds_acuity").values()) == ["1", "2", "3", "4", "5"]
    disposals = set(code_map("ecds_discharge_status").values()) | set(
        code_map("ecds_discharge_destination").values()
    )
    assert disposals == set(CONTRACT["ae_attendances"].column("disposal").codes)
    complaints_list = codelist("ecds_chief_complaint")
    assert complaints_list["code"].is_unique and len(complaints_list) == 216
    assert set(complaints_list["value"]) == set(COMPLAINT_GROUP_CODES)
    # every group can be written by the synthetic writer from a code whose term was checked
    checked = complaints_list[complaints_list["basis"] == "term"]
    assert set(checked["value"]) == set(COMPLAINT_GROUP_CODES)


def test_complaint_mix_follows_age_stream_and_conditions():
    n = 20_000
    rng = np.random.default_rng(3)
    young, old = np.full(n, 10.0), np.full(n, 85.0)
    regular, frequent = np.zeros(n, dtype=int), np.full(n, complaints.FREQUENT_ATTENDER)
    none: dict[str, np.ndarray] = {}

    def share(groups: np.ndarray, group: str) -> float:
        return float(np.mean(groups == group))

    young_regular = complaints.draw_complaint_groups(young, regular, none, rng)
    old_regular = complaints.draw_complaint_groups(old, regular, none, rng)
    assert share(young_regular, "injury") > 2 * share(old_regular, "injury")
    assert share(old_regular, "falls_collapse") > 5 * share(young_regular, "falls_collapse")
    adults = np.full(n, 35.0)
    adult_regular = complaints.draw_complaint_groups(adults, regular, none, rng)
    adult_frequent = complaints.draw_complaint_groups(adults, frequent, none, rng)
    assert share(adult_frequent, "self_harm") > 3 * share(adult_regular, "self_harm")
    smi = complaints.draw_complaint_groups(adults, regular, {"serious_mental_illness": np.ones(n, bool)}, rng)
    assert share(smi, "mental_health") > 3 * share(adult_regular, "mental_health")
    copd = complaints.draw_complaint_groups(old, regular, {"copd": np.ones(n, bool)}, rng)
    assert share(copd, "breathing") > 2 * share(old_regular, "breathing")
    assert 0.04 < np.mean(pd.isna(adult_regular)) < 0.06


@pytest.fixture(scope="module")
def population():
    return generate_population(SyntheticSettings(), 2000, seed=5)


def test_round_trip_on_a_synthetic_population(population):
    ae = population.tables["ae_attendances"]
    national = SOURCE.to_national(population.tables, np.random.default_rng(8))
    assert list(national.columns) == list(FIELDS)
    assert (national["EC_Department_Type"] == "1").any()  # unpadded types are written
    assert national["Arrival_Time"].str.fullmatch(r"\d{2}:\d{2}:\d{2}").all()
    output = SOURCE.adapt(national)
    pd.testing.assert_frame_equal(output.tables["ae_attendances"], ae.reset_index(drop=True))
    coverage = {c.field: c for c in output.coverage}
    assert coverage["EC_Acuity_SNOMED_CT"].share == 1.0
    assert coverage["Der_EC_Diagnosis_All"].wrong_system > 0  # ICD-10 codes among the diagnoses
    assert 0.95 < coverage["EC_Chief_Complaint_SNOMED_CT"].share < 1.0  # noise, only on 'other'
    assert 0.97 < coverage["Discharge_Destination_SNOMED_CT"].share < 1.0


def test_synthetic_complaints_come_from_the_ecds_stream_only(population):
    ae = population.tables["ae_attendances"]
    groups = ae["complaint_group"]
    assert set(groups.dropna()) <= set(COMPLAINT_GROUP_CODES)
    assert 0.02 < groups.isna().mean() < 0.09
    # deaths in the department present with chest pain and breathing far more often
    weights = complaints.complaint_weights(np.array([70.0, 70.0]), np.array([0, complaints.DIED]), {})
    shares = weights / weights.sum(axis=1, keepdims=True)
    chest = list(COMPLAINT_GROUP_CODES).index("chest_pain")
    assert shares[1, chest] > 2 * shares[0, chest]
