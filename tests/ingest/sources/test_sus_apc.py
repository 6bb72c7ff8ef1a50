"""SUS+ APC spells -> apc_spells: hand-made rows with known answers, bad files, and a round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskstrat.errors import ContractError
from riskstrat.ingest.codelists import code_map, codelist, manifest
from riskstrat.ingest.codes import code_system
from riskstrat.ingest.contract import CONTRACT, DISCHARGE_DESTINATION_CODES
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.base import read_raw
from riskstrat.ingest.sources.sus_apc import (
    _DESTINATION_CODES,
    is_icd10_category,
    normalise_icd10,
    split_diagnoses,
)
from riskstrat.ingest.synthetic.generate import generate_population
from riskstrat.ingest.synthetic.settings import SyntheticSettings

SOURCE = SOURCES["sus_apc"]
FIELDS = SOURCE.field_names


def raw(rows: list[dict]) -> pd.DataFrame:
    """Raw SUS APC rows as text columns; fields a row leaves out are empty."""
    return pd.DataFrame([{f: row.get(f) for f in FIELDS} for row in rows]).astype("string")


def spell(ident: str, **fields: str | None) -> dict:
    row = {
        "APCS_Ident": ident,
        "Der_Pseudo_NHS_Number": "P" + ident,
        "Admission_Date": "2024-03-01",
        "Discharge_Date": "2024-03-05",
        "Admission_Method": "21",
        "Discharge_Destination": "19",
        "Discharge_Method": "1",
    }
    row.update(fields)
    return row


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("I50.0", "I500"),
        ("I500", "I500"),
        ("I10X", "I10"),
        ("I10", "I10"),
        ("i10x", "I10"),
        (" I10X ", "I10"),
        ("G30.9\u2020", "G309"),  # dagger
        ("F00.9*", "F009"),  # asterisk
        ("G309D", "G309"),  # Data Dictionary dagger indicator
        ("F009-A", "F009"),  # Data Dictionary filler and asterisk indicator
        ("K57.3-", "K573"),
        ("k57.3", "K573"),
        ("M81.99", "M8199"),
        ("G30..", None),  # a Read v2 code is not the ICD-10 category G30
        ("1234567", None),
        ("", None),
    ],
)
def test_normalise_icd10_reads_the_forms_codes_come_in(written, expected):
    result = normalise_icd10(pd.Series([written], dtype="string"))
    assert (None if pd.isna(result.iloc[0]) else result.iloc[0]) == expected


def test_categories_are_real_icd10_categories_including_who_only_ones():
    codes = pd.Series(["I500", "F009", "E14", "Y530", "R66", "E491", None], dtype="string")
    # F00, E14 and Y53 are WHO ICD-10 categories that ICD-10-CM lacks; R66 and E49 are no category.
    assert is_icd10_category(codes).tolist() == [True, True, True, True, False, False, False]
    assert code_system(pd.Series(["E491", "U051", "G30..", "I500"])) == ["opcs4", "opcs4", "read", "icd10"]


def test_split_diagnoses_reads_the_warehouse_and_list_forms():
    text = pd.Series(["||I500 ,I10X ,E119 ||N179", "I50.0,I10;E11.9", None], index=[10, 11, 12])
    long = split_diagnoses(text)
    assert long["row"].tolist() == [0] * 4 + [1] * 3
    assert long["code"].tolist() == ["I500", "I10X", "E119", "N179", "I50.0", "I10", "E11.9"]
    assert long["position"].tolist() == [0, 1, 2, 3, 0, 1, 2]


ROWS = [
    spell(  # warehouse form: repeated codes across episodes kept once, primary first
        "1",
        Der_Primary_Diagnosis_Code="I500",
        Der_Diagnosis_All="||I500 ,I10X ,E119 ||I500 ,N183",
    ),
    spell(  # dotted, a dagger/asterisk pair, a trailing filler, lower case
        "2",
        Admission_Method="2A",
        Discharge_Destination="55",
        Der_Primary_Diagnosis_Code="J44.1",
        Der_Diagnosis_All="J44.1,G30.9\u2020,F00.9*,K57.3-,i48.9",
    ),
    spell(  # no primary field: the first code of Der_Diagnosis_All is the primary
        "3",
        Admission_Method="11",
        Discharge_Destination="51",
        Der_Diagnosis_All="H25.9;Z86.4",
    ),
    spell(  # an OPCS-4 procedure, a Read code and an unknown category among the secondaries
        "4",
        Discharge_Destination="79",
        Discharge_Method="4",
        Der_Primary_Diagnosis_Code="J18.9",
        Der_Diagnosis_All="||J189 ,E491 ,G30.. ,R66X ,I10X",
    ),
    spell(  # still in hospital: no discharge, destination 98; no Der_Diagnosis_All supplied
        "5",
        Discharge_Date=None,
        Discharge_Destination="98",
        Discharge_Method=None,
        Der_Primary_Diagnosis_Code="S72.0",
    ),
    spell(  # an unknown destination code and a wrong-system primary
        "6",
        Discharge_Destination="77",
        Der_Primary_Diagnosis_Code="W401",
        Der_Diagnosis_All="W401,I10",
    ),
]


@pytest.fixture(scope="module")
def adapted():
    return SOURCE.adapt(raw(ROWS))


def test_spells_have_contract_columns_and_types(adapted):
    spells = adapted.tables["apc_spells"]
    assert list(spells.columns) == list(CONTRACT["apc_spells"].column_names)
    assert spells["admission_date"].dtype == "datetime64[s]"
    assert spells["discharge_date"].isna().tolist() == [False] * 4 + [True, False]
    assert spells["admission_method"].tolist() == ["21", "2A", "11", "21", "21", "21"]


def test_primary_and_all_diagnoses_are_normalised_in_order_without_repeats(adapted):
    spells = adapted.tables["apc_spells"].set_index("spell_id")
    assert spells.loc["1", "diagnoses"] == "I500;I10;E119;N183"
    assert spells.loc["2", "primary_diagnosis"] == "J441"
    assert spells.loc["2", "diagnoses"] == "J441;G309;F009;K573;I489"
    assert spells.loc["3", "primary_diagnosis"] == "H259"
    assert spells.loc["3", "diagnoses"] == "H259;Z864"
    assert spells.loc["4", "diagnoses"] == "J189;I10"  # OPCS, Read and unknown codes left out
    assert spells.loc["5", "primary_diagnosis"] == "S720"
    assert pd.isna(spells.loc["5", "diagnoses"])  # not supplied, not invented from the primary
    # W40 is an ICD-10 category (explosion of other materials): the OPCS code W401 is not told apart.
    assert spells.loc["6", "primary_diagnosis"] == "W401"


def test_discharge_destinations_are_mapped_and_coverage_names_the_unknown_code(adapted):
    spells = adapted.tables["apc_spells"].set_index("spell_id")
    assert spells["discharge_destination"].tolist()[:4] == [
        "usual_residence",
        "care_home",
        "other_hospital",
        "died",
    ]
    assert pd.isna(spells.loc["5", "discharge_destination"])  # 98: not finished
    assert pd.isna(spells.loc["6", "discharge_destination"])  # 77: no such code
    coverage = {c.field: c for c in adapted.coverage}
    destination = coverage["Discharge_Destination"]
    assert (destination.rows, destination.mapped) == (6, 5)
    assert [(u.code, u.rows) for u in destination.unmapped] == [("77", 1)]


def test_diagnosis_coverage_names_wrong_system_and_unknown_codes(adapted):
    coverage = {c.field: c for c in adapted.coverage}
    every = coverage["Der_Diagnosis_All"]
    # distinct codes per spell: 4 + 5 + 2 + 5 + 2 = 18 (spell 1's repeated I500 counted once)
    assert every.rows == 18
    assert every.mapped == 15
    unmapped = {u.code: u.system for u in every.unmapped}
    assert unmapped == {"E491": "opcs4", "G30..": "read", "R66X": ""}
    assert every.wrong_system == 2
    primary = coverage["Der_Primary_Diagnosis_Code"]
    assert (primary.rows, primary.mapped) == (6, 6)
    assert adapted.notes and "3 of 18" in adapted.notes[0]


def _problem(error: pytest.ExceptionInfo) -> tuple:
    problem = error.value.problems[0]
    return problem.table, problem.column, problem.n_rows, problem.examples


def test_a_malformed_date_is_rejected_naming_field_rows_and_example_ids():
    rows = [spell("1"), spell("2", Admission_Date="01/03/2024"), spell("3", Admission_Date="2024-13-01")]
    with pytest.raises(ContractError) as error:
        SOURCE.adapt(raw(rows))
    assert _problem(error) == ("SUS+ Admitted Patient Care spells", "Admission_Date", 2, ("2", "3"))


def test_an_empty_admission_method_or_spell_id_is_rejected():
    with pytest.raises(ContractError) as error:
        SOURCE.adapt(raw([spell("1"), spell("2", Admission_Method=None)]))
    assert _problem(error) == ("SUS+ Admitted Patient Care spells", "Admission_Method", 1, ("2",))
    with pytest.raises(ContractError) as error:
        SOURCE.adapt(raw([spell("1"), {**spell("2"), "APCS_Ident": None}]))
    assert _problem(error) == ("SUS+ Admitted Patient Care spells", "APCS_Ident", 1, ("P2",))


def test_a_missing_field_is_rejected_naming_the_file_and_the_field(tmp_path: Path):
    frame = raw([spell("1")]).drop(columns=["Admission_Method"])
    path = tmp_path / "sus_apc_spells.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ContractError) as error:
        read_raw(path, SOURCE)
    problem = error.value.problems[0]
    assert problem.table == "SUS+ Admitted Patient Care spells (sus_apc_spells.csv)"
    assert problem.column == "Admission_Method"


def test_odd_admission_methods_pass_through_for_the_gate_to_report():
    spells = SOURCE.adapt(raw([spell("1", Admission_Method="21.0"), spell("2", Admission_Method=" 21")]))
    assert spells.tables["apc_spells"]["admission_method"].tolist() == ["21.0", " 21"]


def test_destination_list_covers_every_contract_value_and_the_writer_uses_listed_codes():
    mapping = code_map("sus_discharge_destination")
    assert set(mapping.values()) - {""} == set(DISCHARGE_DESTINATION_CODES)
    for value, (codes, shares) in _DESTINATION_CODES.items():
        assert {mapping[c] for c in codes} == {value}
        assert sum(shares) == pytest.approx(1.0)
    assert mapping["98"] == "" and mapping["79"] == "died" and mapping["88"] == "hospice"


def test_shipped_lists_have_manifest_entries_with_licences():
    for name in ("icd10_categories", "sus_discharge_destination", "icd10_conditions"):
        info = manifest()[name]
        assert info.licence and info.source and info.version
        assert info.path.stat().st_size < 2_000_000
    categories = codelist("icd10_categories")
    assert categories["code"].is_unique and categories["code"].str.fullmatch(r"[A-Z][0-9][0-9A-Z]").all()


@pytest.fixture(scope="module")
def population():
    return generate_population(SyntheticSettings(), 2000, seed=5)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_round_trip_gives_back_the_contract_table(population, tmp_path: Path, suffix: str):
    spells = population.tables["apc_spells"]
    national = SOURCE.to_national(population.tables, np.random.default_rng(7))
    path = tmp_path / f"sus_apc_spells.{suffix}"
    national.to_csv(path, index=False) if suffix == "csv" else national.to_parquet(path, index=False)
    output = SOURCE.adapt(read_raw(path, SOURCE))
    pd.testing.assert_frame_equal(output.tables["apc_spells"], spells.reset_index(drop=True))
    every = {c.field: c for c in output.coverage}["Der_Diagnosis_All"]
    assert 0.98 < every.share < 1.0  # the writer's noise is counted, not lost silently
    assert every.wrong_system > 0


def test_national_file_uses_the_real_forms(population):
    national = SOURCE.to_national(population.tables, np.random.default_rng(7))
    text = national["Der_Diagnosis_All"].dropna()
    assert text.str.startswith("||").mean() > 0.4  # the warehouse form
    assert text.str.contains(r"\.", regex=True).mean() > 0.1  # dotted codes
    assert text.str.contains(r"[A-Z][0-9]{2}X", regex=True).any()  # X-padded categories
    assert national["Admission_Date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    open_spells = population.tables["apc_spells"]["discharge_date"].isna().to_numpy()
    assert (national.loc[open_spells, "Discharge_Destination"] == "98").all()
