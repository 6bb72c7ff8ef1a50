"""GP coded events, medication issues and appointments -> gp_diagnoses, gp_medications, gp_appointments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import codelist, manifest
from riskstrat.ingest.codes import is_snomed_id
from riskstrat.ingest.contract import APPOINTMENT_MODE_CODES, APPOINTMENT_STATUS_CODES
from riskstrat.ingest.reference import conditions
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import SyntheticSettings

EVENTS = SOURCES["gp_events"]
MEDICATIONS = SOURCES["gp_medications"]
APPOINTMENTS = SOURCES["gp_appointments"]


def raw(source, rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(source.field_names)).astype("string")


def plain(frame: pd.DataFrame) -> list[list]:
    """Rows as Python values, missing values as None."""
    return frame.astype(object).where(frame.notna(), None).values.tolist()


# -- coded events --------------------------------------------------------------------------

EVENT_ROWS = [
    # person, DATE, RECORD_DATE, CODE, VALUE1_CONDITION, PRACTICE
    ("P1", "2020-03-01", "2020-03-02", "38341003", None, "A1"),  # hypertension (HYP_COD)
    ("P1", "2023-05-01", None, "162659009", None, "A1"),  # hypertension resolved (HYPRES_COD)
    ("P1", None, "2024-01-10", " 195967001 ", None, "A1"),  # asthma; no DATE: RECORD_DATE, spaces
    ("P2", "2024-02-01", None, "713636003", "0.27", "A1"),  # recorded eFI as a fraction
    ("P2", "2025-02-01", None, "713634000", "31", "A1"),  # eFI as a percentage -> 0.31
    ("P2", "2024-02-01", None, "75367002", "140", "A1"),  # blood pressure: not a condition
    ("P3", "2022-07-07", None, "G20..", None, "A1"),  # Read v2 hypertension: wrong system
    ("P3", "2022-07-07", None, "XaJ0i", None, "A1"),  # CTV3: wrong system
    ("P3", "2021-01-01", None, "160734000", None, "A1"),  # lives in a nursing home
]


def test_maps_conditions_resolved_codes_and_efi_scores():
    output = EVENTS.adapt(raw(EVENTS, EVENT_ROWS))
    diagnoses = output.tables["gp_diagnoses"]
    assert list(diagnoses.columns) == [
        "person_id",
        "event_date",
        "condition",
        "snomed_code",
        "status",
        "value",
    ]
    assert str(diagnoses["event_date"].dtype) == "datetime64[s]"
    assert str(diagnoses["value"].dtype) == "float64"
    assert plain(diagnoses) == [
        ["P1", pd.Timestamp("2020-03-01"), "hypertension", "38341003", "diagnosed", None],
        ["P1", pd.Timestamp("2023-05-01"), "hypertension", "162659009", "resolved", None],
        ["P1", pd.Timestamp("2024-01-10"), "asthma", "195967001", "diagnosed", None],
        ["P2", pd.Timestamp("2024-02-01"), "recorded_efi", "713636003", "diagnosed", 0.27],
        ["P2", pd.Timestamp("2025-02-01"), "recorded_efi", "713634000", "diagnosed", 0.31],
        ["P3", pd.Timestamp("2021-01-01"), "care_home_resident", "160734000", "diagnosed", None],
    ]


def test_coverage_counts_codes_that_are_not_conditions_and_names_read_codes():
    output = EVENTS.adapt(raw(EVENTS, EVENT_ROWS))
    (coverage,) = output.coverage
    assert (coverage.field, coverage.codelist) == ("CODE", "snomed_conditions")
    assert (coverage.rows, coverage.mapped) == (9, 6)
    assert coverage.wrong_system == 2
    assert {(u.code, u.rows, u.system) for u in coverage.unmapped} == {
        ("75367002", 1, ""),
        ("G20..", 1, "read"),
        ("XaJ0i", 1, "read"),
    }
    assert any(n.startswith("6 of 9 GP coded events (66.7%)") for n in output.notes)
    assert any(n.startswith("1 resolved codes") for n in output.notes)


def test_efi_values_outside_0_to_100_or_not_numbers_are_left_empty():
    rows = [
        ("P1", "2024-01-01", None, "713636003", "250", None),
        ("P1", "2024-06-01", None, "713636003", "high", None),
        ("P1", "2024-09-01", None, "713636003", "1", None),  # 1 is a fraction (the maximum), not 1%
    ]
    output = EVENTS.adapt(raw(EVENTS, rows))
    assert plain(output.tables["gp_diagnoses"][["value"]]) == [[None], [None], [1.0]]
    assert any(n.startswith("2 values in VALUE1_CONDITION") for n in output.notes)


@pytest.mark.parametrize(
    ("row", "field", "rows"),
    [
        (("P9", "2024-13-01", None, "38341003", None, None), "DATE", 1),
        (("P9", "2024-01-01", "01/02/2024", "38341003", None, None), "RECORD_DATE", 1),
        (("P9", None, None, "38341003", None, None), "DATE", 1),
        ((None, "2024-01-01", None, "38341003", None, None), "NHS_NUMBER_DEID", 1),
        (("P9", "2024-01-01", None, None, None, None), "CODE", 1),
    ],
)
def test_bad_events_are_rejected_naming_dataset_field_rows_and_example(row, field, rows):
    with pytest.raises(ContractError) as caught:
        EVENTS.adapt(raw(EVENTS, [EVENT_ROWS[0], row]))
    (problem,) = caught.value.problems
    assert (problem.table, problem.column, problem.n_rows) == ("GP coded events", field, rows)
    if field != "NHS_NUMBER_DEID":
        assert problem.examples == ("P9",)


# -- the code list -------------------------------------------------------------------------


def test_condition_list_is_well_formed_and_maps_into_the_vocabulary():
    table = codelist("snomed_conditions")
    assert table["code"].is_unique
    assert table["code"].map(is_snomed_id).all()
    assert set(table["value"]) <= set(conditions()["condition"])
    assert set(table["status"]) == {"diagnosed", "resolved"}
    resolved = table[table["status"] == "resolved"].set_index("code")
    assert resolved.loc["162659009", ["value", "cluster"]].tolist() == ["hypertension", "HYPRES_COD"]
    assert resolved.loc["315051004", ["value", "cluster"]].tolist() == ["diabetes", "DMRES_COD"]
    assert resolved.loc["162660004", ["value", "cluster"]].tolist() == ["asthma", "ASTRES_COD"]
    assert resolved.loc["196381000000100", ["value", "cluster"]].tolist() == ["depression", "DEPRES_COD"]
    # Every generated condition (all but polypharmacy) has a code, so the synthetic writer can write it.
    generated = set(conditions()["condition"]) - {"polypharmacy"}
    assert generated <= set(table.loc[table["status"] == "diagnosed", "value"])
    info = manifest()["snomed_conditions"]
    assert "BSD 3-Clause" in info.licence
    assert (info.path.parent / "LICENSE-dynairx-baseline2").is_file()


def test_value_rule_observations_are_not_conditions():
    # Baseline2 counts a BP reading as hypertension only if three readings are high: left out.
    table = codelist("snomed_conditions")
    assert "271649006" not in set(table["code"])  # systolic blood pressure
    assert not table["rule"].str.contains("reading", case=False).any()


# -- medications ---------------------------------------------------------------------------


def test_bnf_codes_of_any_length_are_cut_to_chapter_and_section():
    rows = [
        ("P1", "2024-01-01", None, "0205051R0AAAAAA"),
        ("P1", "2024-02-01", None, "0205"),
        ("P1", "2024-03-01", None, "040702"),
        ("P2", "2024-01-01", None, "9905"),  # not a BNF chapter
        ("P2", "2024-01-01", None, "10514511000001106"),  # a dm+d ID in the BNF field
        ("P2", "2024-01-01", "10514511000001106", None),  # dm+d only: no map shipped
    ]
    output = MEDICATIONS.adapt(raw(MEDICATIONS, rows))
    assert plain(output.tables["gp_medications"]) == [
        ["P1", pd.Timestamp("2024-01-01"), "0205"],
        ["P1", pd.Timestamp("2024-02-01"), "0205"],
        ["P1", pd.Timestamp("2024-03-01"), "0407"],
    ]
    coverage = {c.field: c for c in output.coverage}
    bnf = coverage["BNF_Code"]
    assert (bnf.rows, bnf.mapped, bnf.wrong_system) == (5, 3, 1)
    assert {(u.code, u.system) for u in bnf.unmapped} == {("9905", ""), ("10514511000001106", "snomed")}
    dmd = coverage["CODE"]
    assert (dmd.rows, dmd.mapped) == (1, 0) if "dmd_bnf" not in manifest() else dmd.rows == 1
    assert any(n.startswith("3 medication issues had no recognised BNF code") for n in output.notes)


def test_medication_without_a_date_is_rejected():
    with pytest.raises(ContractError) as caught:
        MEDICATIONS.adapt(raw(MEDICATIONS, [("P1", None, None, "0205"), ("P2", "2024-02-30", None, "0205")]))
    (problem,) = caught.value.problems
    assert (problem.table, problem.column, problem.n_rows, problem.examples) == (
        "GP prescribing (medication issues)",
        "DATE",
        1,
        ("P1",),
    )


# -- appointments --------------------------------------------------------------------------


def test_gpad_words_map_without_case_and_unknown_is_left_empty():
    rows = [
        ("P1", "2024-01-01", "Face-to-Face", "Attended"),
        ("P1", "2024-01-02", "TELEPHONE", "Did Not Attend"),
        ("P1", "2024-01-03", "Home Visit", "DNA"),
        ("P1", "2024-01-04", "Video Conference/Online", "Unknown"),
        ("P1", "2024-01-05", "Unknown", None),
        ("P1", "2024-01-06", "Carrier pigeon", "Attended"),
    ]
    output = APPOINTMENTS.adapt(raw(APPOINTMENTS, rows))
    assert plain(output.tables["gp_appointments"][["mode", "status"]]) == [
        ["face_to_face", "attended"],
        ["telephone", "dna"],
        ["home_visit", "dna"],
        ["online", None],
        [None, None],
        [None, "attended"],
    ]
    coverage = {c.field: c for c in output.coverage}
    assert (coverage["Appointment_Mode"].rows, coverage["Appointment_Mode"].mapped) == (6, 5)
    assert [(u.code, u.rows) for u in coverage["Appointment_Mode"].unmapped] == [("carrier pigeon", 1)]
    assert (coverage["Appointment_Status"].rows, coverage["Appointment_Status"].mapped) == (5, 5)


def test_appointment_lists_cover_every_contract_value():
    modes = set(codelist("gp_appointment_modes")["value"]) - {"unknown"}
    statuses = set(codelist("gp_appointment_statuses")["value"]) - {"unknown"}
    assert modes == set(APPOINTMENT_MODE_CODES)
    assert statuses == set(APPOINTMENT_STATUS_CODES)


def test_appointment_missing_date_is_rejected():
    with pytest.raises(ContractError) as caught:
        APPOINTMENTS.adapt(raw(APPOINTMENTS, [("P7", None, "Telephone", "Attended")]))
    (problem,) = caught.value.problems
    assert (problem.column, problem.n_rows, problem.examples) == ("Appointment_Date", 1, ("P7",))


# -- round trip on the synthetic population ------------------------------------------------


@pytest.fixture(scope="module")
def population():
    return generate_population(SyntheticSettings(), 2000, seed=5)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in frame.columns if c != "snomed_code"]
    return frame[columns].sort_values(columns).reset_index(drop=True)


@pytest.mark.parametrize("name", ["gp_events", "gp_medications", "gp_appointments"])
def test_round_trip_gives_the_same_contract_tables(population, name):
    source = SOURCES[name]
    national = source.to_national(population.tables, np.random.default_rng(3))
    assert list(national.columns) == list(source.field_names)
    output = source.adapt(national.astype("string"))
    for table, frame in output.tables.items():
        expected = population.tables[table]
        assert list(frame.columns) == list(expected.columns)
        pd.testing.assert_frame_equal(_sorted(frame), _sorted(expected), check_dtype=False)
        for column in frame.columns:
            assert frame[column].dtype.kind == expected[column].dtype.kind, column


def test_national_events_carry_noise_and_several_codes_per_condition(population):
    national = EVENTS.to_national(population.tables, np.random.default_rng(3))
    output = EVENTS.adapt(national.astype("string"))
    (coverage,) = output.coverage
    assert 0.005 < 1 - coverage.share < 0.02  # about 1% extra rows that are not conditions
    assert coverage.wrong_system > 0
    diagnoses = output.tables["gp_diagnoses"]
    codes_per_condition = diagnoses.groupby("condition")["snomed_code"].nunique()
    assert codes_per_condition["hypertension"] > 1
    assert (diagnoses["status"] == "resolved").any()
    efi = diagnoses[diagnoses["condition"] == "recorded_efi"]
    assert len(efi) > 0 and efi["value"].between(0, 1).all()


def test_generator_records_resolved_codes_and_efi_scores_of_older_people(population):
    tables = population.tables
    diagnoses = tables["gp_diagnoses"]
    resolved = diagnoses[diagnoses["status"] == "resolved"]
    assert set(resolved["condition"]) <= {
        "asthma", "depression", "hypertension", "diabetes", "copd", "atrial_fibrillation", "alcohol_dependence",
    }  # fmt: skip
    # A resolved code always follows a diagnosis of the same condition.
    first = (
        diagnoses[diagnoses["status"] == "diagnosed"].groupby(["person_id", "condition"])["event_date"].min()
    )
    keys = pd.MultiIndex.from_frame(resolved[["person_id", "condition"]])
    assert (resolved["event_date"].to_numpy() > first.reindex(keys).to_numpy()).all()
    efi = diagnoses[diagnoses["condition"] == "recorded_efi"]
    birth = tables["patients"].set_index("person_id")["birth_date"]
    age = (efi["event_date"] - efi["person_id"].map(birth)).dt.days / 365.25
    assert (age >= 64.9).all()
    assert efi["value"].between(0, 1).all() and (efi["value"].round(2) == efi["value"]).all()


def test_every_resolved_code_in_the_condition_list_is_described_as_resolved():
    # A diagnosis code listed as "resolved" would switch the condition off for everyone coded with it.
    from riskstrat.ingest.codelists import codelist

    conditions = codelist("snomed_conditions")
    resolved = conditions[conditions["status"] == "resolved"]
    assert len(resolved) >= 7
    assert resolved["description"].str.contains("resolved", case=False).all(), resolved[
        ["code", "description"]
    ]
    assert "196371000000102" in set(resolved["code"]) and "195080001" not in set(resolved["code"])


def test_an_appointment_with_an_unrecognised_status_is_left_out_not_counted_as_attended():
    source = SOURCES["gp_appointments"]
    raw = pd.DataFrame(
        {
            "NHS_NUMBER_DEID": ["P1", "P2", "P3"],
            "Appointment_Date": ["2024-01-02"] * 3,
            "Appointment_Mode": ["Face-to-Face"] * 3,
            "Appointment_Status": ["Attended", "Cancelled by Patient", None],
        },
        dtype="string",
    )
    out = source.adapt(raw)
    assert out.tables["gp_appointments"]["person_id"].tolist() == ["P1", "P3"]
    assert any("left out" in note for note in out.notes)
