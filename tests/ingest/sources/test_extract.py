"""adapt_extract: every enabled adapter over a raw folder, with a fake source registered for the test."""

from __future__ import annotations

import pandas as pd
import pytest
from fake_source import (
    FAKE_APC,
    empty_contract_tables,
    fake_raw,
    fake_settings,
    registered_fake,
    write_raw_folder,
)

from riskstrat.errors import ContractError
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.extract import adapt_extract
from riskstrat.ingest.sources.settings import SourceSettings


@pytest.fixture
def fake():
    with registered_fake() as source:
        yield source
    assert FAKE_APC.name not in SOURCES


def test_adapts_the_fake_source_and_copies_contract_files(tmp_path, fake):
    raw = write_raw_folder(tmp_path / "raw", empty_contract_tables())
    adapted = adapt_extract(raw, fake_settings())
    spells = adapted.tables["apc_spells"]
    assert list(spells["spell_id"]) == ["S1", "S2", "S3", "S4"]
    assert list(spells["admission_method"]) == ["21", "11", "21", "99"]  # the local variant mapped; X9 not
    assert spells["admission_date"].dtype == "datetime64[s]"
    assert set(adapted.copied) == set(empty_contract_tables()) - {"apc_spells"}
    assert adapted.copied["patients"] == raw / "patients.parquet"
    (coverage,) = adapted.coverage
    assert (coverage.rows, coverage.mapped, coverage.share) == (4, 3, 0.75)
    assert [(u.code, u.rows) for u in coverage.unmapped] == [("X9", 1)]
    payload = adapted.coverage_payload()
    assert payload["files"] == {"fake_apc": "fake_apc.csv"}
    assert payload["notes"] == ["4 fake spells read"]
    assert payload["fields"][0]["unmapped"] == [{"code": "X9", "rows": 1, "system": ""}]


def test_renamed_columns_are_read_under_their_local_names(tmp_path, fake):
    local = fake_raw().rename(columns={"Pseudo_ID": "Pseudo_NHS_No", "Admission_Date": "AdmDate"})
    raw = write_raw_folder(tmp_path / "raw", empty_contract_tables(), local)
    settings = fake_settings(columns={"Pseudo_ID": "Pseudo_NHS_No", "Admission_Date": "AdmDate"})
    adapted = adapt_extract(raw, settings)
    assert list(adapted.tables["apc_spells"]["person_id"]) == ["P001", "P002", "P003", "P004"]


def test_a_renamed_column_missing_from_the_file_names_both_names(tmp_path, fake):
    raw = write_raw_folder(tmp_path / "raw", empty_contract_tables())
    with pytest.raises(ContractError) as caught:
        adapt_extract(raw, fake_settings(columns={"Pseudo_ID": "Pseudo_NHS_No"}))
    message = caught.value.message
    assert "Fake APC spells (fake_apc.csv)" in message and "Pseudo_NHS_No" in message
    assert "renamed to Pseudo_NHS_No in configs/sources.yaml" in message


def test_a_missing_raw_file_is_named_with_the_folder(tmp_path, fake):
    raw = write_raw_folder(tmp_path / "raw", empty_contract_tables())
    (raw / "fake_apc.csv").unlink()
    (raw / "opt_outs.parquet").unlink()
    with pytest.raises(ContractError) as caught:
        adapt_extract(raw, fake_settings())
    message = caught.value.message
    assert "Fake APC spells" in message and "fake_apc.parquet or fake_apc.csv" in message
    assert "opt_outs" in message  # every missing file at once, not the first only


def test_the_file_setting_changes_the_stem_read(tmp_path, fake):
    raw = write_raw_folder(tmp_path / "raw", empty_contract_tables())
    (raw / "fake_apc.csv").rename(raw / "apcs_2026_q3.csv")
    adapted = adapt_extract(raw, fake_settings(file="apcs_2026_q3"))
    assert adapted.files == {"fake_apc": "apcs_2026_q3.csv"}


def test_a_table_from_an_adapter_and_from_contract_tables_is_refused(tmp_path, fake):
    raw = write_raw_folder(tmp_path / "raw", empty_contract_tables())
    settings = fake_settings()
    both = SourceSettings(
        sources=dict(settings.sources), contract_tables=(*settings.contract_tables, "apc_spells")
    )
    with pytest.raises(ContractError, match="an adapter and contract_tables both give it"):
        adapt_extract(raw, both)


def test_a_table_with_no_source_is_named(tmp_path, fake):
    raw = write_raw_folder(tmp_path / "raw", empty_contract_tables())
    settings = fake_settings()
    short = SourceSettings(
        sources=dict(settings.sources),
        contract_tables=tuple(t for t in settings.contract_tables if t != "caseload"),
    )
    with pytest.raises(ContractError) as caught:
        adapt_extract(raw, short)
    assert "caseload" in caught.value.message and "contract_tables" in caught.value.message


def test_malformed_raw_values_name_the_dataset_field_rows_and_ids(tmp_path, fake):
    bad = fake_raw()
    bad.loc[1, "Admission_Date"] = "03/02/2024"
    bad.loc[3, "Admission_Date"] = "yesterday"
    raw = write_raw_folder(tmp_path / "raw", empty_contract_tables(), bad)
    with pytest.raises(ContractError) as caught:
        adapt_extract(raw, fake_settings())
    (problem,) = caught.value.problems
    assert (problem.table, problem.column, problem.n_rows) == ("Fake APC spells", "Admission_Date", 2)
    assert problem.examples == ("S2", "S4")


def test_both_a_parquet_and_a_csv_raw_file_is_refused(tmp_path, fake):
    raw = write_raw_folder(tmp_path / "raw", empty_contract_tables())
    fake_raw().to_parquet(raw / "fake_apc.parquet", index=False)
    with pytest.raises(ContractError, match=r"Remove the stale file|found fake_apc"):
        adapt_extract(raw, fake_settings())


# ----------------------------------------------------------------------------- settings


def test_an_unknown_source_in_sources_yaml_is_refused(fake):
    with pytest.raises(ValueError, match=r"unknown source.*nonesuch"):
        SourceSettings(sources={"nonesuch": {}})


def test_an_unknown_field_in_columns_is_refused_naming_the_fields(fake):
    with pytest.raises(
        ValueError, match="Admission_Dt is not a field of Fake APC spells; fields: Spell_Ident"
    ):
        SourceSettings(sources={"fake_apc": {"columns": {"Admission_Dt": "AdmDate"}}})


def test_an_unknown_contract_table_is_refused():
    with pytest.raises(ValueError, match="caseloads is not a contract table"):
        SourceSettings(contract_tables=("caseloads",))


def test_an_invalid_sources_yaml_stops_loading_the_config_with_the_file_named(tmp_path, fake):
    from riskstrat.errors import SettingsError
    from riskstrat.pipelines.config import load_config, write_relocated_config

    configs = write_relocated_config(tmp_path / "configs", tmp_path / "outputs")
    (configs / "sources.yaml").write_text("sources:\n  fake_apc:\n    columns: {Nope: X}\n", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_config(configs)
    assert (
        "sources.yaml" in caught.value.message
        and "Nope is not a field of Fake APC spells" in caught.value.message
    )


def test_the_fake_round_trips_through_its_national_format(tmp_path, fake):
    import numpy as np

    spells = fake.adapt(fake_raw().astype("string")).tables["apc_spells"].iloc[:3]
    national = fake.to_national({"apc_spells": spells}, np.random.default_rng(0))
    back = fake.adapt(national.astype("string")).tables["apc_spells"]
    pd.testing.assert_frame_equal(
        back.reset_index(drop=True), spells.reset_index(drop=True), check_dtype=False
    )


# ----------------------------------------------------------------------------- the "Bring your data" page


def test_bring_your_data_lists_every_source_its_fields_and_every_code_list(fake):
    from riskstrat.ingest.codelists import manifest
    from riskstrat.ingest.sources_docs import render_bring_your_data

    page = render_bring_your_data()
    for source in SOURCES.values():
        assert f"(`{source.name}`): file `{source.file}.parquet`" in page, source.name
        for field in source.fields:
            assert f"| `{field.name}` |" in page
    for name in manifest():
        assert f"| `{name}` |" in page
    assert "| `Admission_Method` | **required** | fake | admission method |" in page
    assert "## Reading the coverage report" in page and "## Renaming columns" in page


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_raw_values_lose_their_padding_and_empty_values_are_missing_in_csv_and_parquet(tmp_path, suffix):
    # Warehouse exports pad fixed-width columns; a Parquet empty string must read as missing, as in CSV.
    from riskstrat.ingest.sources import SOURCES
    from riskstrat.ingest.sources.base import read_raw

    source = SOURCES["sus_apc"]
    frame = pd.DataFrame({name: ["x", "x"] for name in source.field_names})
    frame["Der_Pseudo_NHS_Number"] = ["P001  ", "P002"]
    frame["Discharge_Date"] = ["", "2024-01-02"]
    path = tmp_path / f"sus_apc_spells{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    read = read_raw(path, source)
    assert read["Der_Pseudo_NHS_Number"].tolist() == ["P001", "P002"]
    assert read["Discharge_Date"].isna().tolist() == [True, False]


def test_the_coverage_report_shows_only_the_shape_of_unmapped_values_that_could_be_personal():
    # A column mapped by mistake (dates of birth, postcodes, NHS numbers) must not reach Data Docs.
    from riskstrat.ingest.sources.base import map_codes

    values = pd.Series(["1980-03-04", "WV10 7AB", "9434765919", "J23X", "A"], dtype="string")
    _, coverage = map_codes(SOURCES["sus_apc"], "Discharge_Destination", values, {"A": "x"}, "list", "")
    shown = {u.code for u in coverage.unmapped}
    assert shown == {"9999-99-99", "AA99 9AA", "9999999999", "J23X"}
