"""`riskstrat generate --national`: raw national files in raw/, the generator's tables in truth/contract/."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from riskstrat.catalog import output_catalog
from riskstrat.errors import SettingsError
from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.sources import SOURCES, register_source
from riskstrat.ingest.sources.extract import adapt_extract
from riskstrat.ingest.sources.settings import SourceSettings
from riskstrat.ingest.synthetic.settings import SyntheticSettings
from riskstrat.pipelines.generate import as_raw_text, national_sources, write_synthetic

PEOPLE = 1_500


@pytest.fixture(scope="module")
def national(tmp_path_factory):
    out = tmp_path_factory.mktemp("national")
    settings = SyntheticSettings(chunk_size=1000)  # two chunks: the raw writers append row groups
    paths = write_synthetic(out, PEOPLE, 7, settings, national=SourceSettings())
    return out, paths


def test_raw_files_and_truth_contract_are_written_and_extract_is_left_to_adapt(national):
    out, paths = national
    outputs = output_catalog(out)
    assert paths.raw_dir == outputs.raw
    assert not outputs.extract.exists()
    raw = {p.name for p in outputs.raw.iterdir()}
    assert {f"{s.file}.parquet" for s in SOURCES.values()} <= raw
    assert {"caseload.parquet", "opt_outs.parquet"} <= raw
    assert {f"{t}.parquet" for t in CONTRACT} == {p.name for p in outputs.truth_contract.iterdir()}
    assert (outputs.truth / "risk.parquet").is_file()
    for source in SOURCES.values():  # raw files are text, as warehouse exports are
        schema = pq.read_schema(outputs.raw / f"{source.file}.parquet")
        assert {str(t) for t in schema.types} == {"string"}, source.name


def test_the_raw_files_adapt_back_to_the_generators_people_and_spells(national):
    out, _ = national
    outputs = output_catalog(out)
    adapted = adapt_extract(outputs.raw, SourceSettings())
    truth = {t: pd.read_parquet(outputs.truth_contract / f"{t}.parquet") for t in ("patients", "apc_spells")}
    assert set(adapted.tables["patients"]["person_id"]) == set(truth["patients"]["person_id"])
    assert sorted(adapted.tables["apc_spells"]["spell_id"]) == sorted(truth["apc_spells"]["spell_id"])
    assert adapted.coverage and all(c.share > 0.9 for c in adapted.coverage if c.rows)
    # Every table the adapters make comes back whole across the two chunks (no ID made per chunk
    # may collide with another chunk's and be taken for a duplicate).
    for table, frame in adapted.tables.items():
        if table == "social_care_returns":
            continue  # per chunk in the contract form, per return read in the raw form: below
        assert len(frame) == pq.ParquetFile(outputs.truth_contract / f"{table}.parquet").metadata.num_rows, (
            table
        )
    # Every return the raw CLD files hold is one the generator received (a quarter written only
    # where its LA has rows), each listed once.
    returns = adapted.tables["social_care_returns"]
    keys = ["la_code", "reporting_period_start"]
    generated = pd.read_parquet(outputs.truth_contract / "social_care_returns.parquet")
    assert not returns.duplicated(keys).any()

    def received(frame: pd.DataFrame) -> set[tuple[str, pd.Timestamp]]:
        return set(
            zip(frame["la_code"].astype(str), pd.to_datetime(frame["reporting_period_start"]), strict=True)
        )

    assert received(returns) and received(returns) <= received(generated)


def test_the_same_seed_writes_identical_raw_files(national, tmp_path):
    out, _ = national
    again = write_synthetic(
        tmp_path, PEOPLE, 7, SyntheticSettings(chunk_size=1000), national=SourceSettings()
    )
    for source in SOURCES.values():
        first = pd.read_parquet(output_catalog(out).raw / f"{source.file}.parquet")
        second = pd.read_parquet(again.raw_dir / f"{source.file}.parquet")
        pd.testing.assert_frame_equal(first, second, obj=source.name)


def test_a_source_without_a_national_writer_is_refused():
    name = next(iter(SOURCES))
    register_source(dataclasses.replace(SOURCES[name], name="no_writer", to_national=None))
    try:
        with pytest.raises(SettingsError, match="no_writer: no national writer"):
            national_sources(SourceSettings())
        assert "no_writer" not in {
            s.name for s in national_sources(SourceSettings(sources={"no_writer": {"enabled": False}}))
        }
    finally:
        SOURCES.pop("no_writer", None)


def test_raw_text_keeps_dates_as_iso_text_and_missing_as_null():
    frame = pd.DataFrame(
        {
            "day": pd.to_datetime(["2024-01-02", None]),
            "when": pd.to_datetime(["2024-01-02 10:15:00", "2024-01-03"], format="ISO8601"),
            "code": pd.array(["0205", None], dtype="string"),
            "n": [1.5, np.nan],
        }
    )
    table = as_raw_text(frame).to_pydict()
    assert table == {
        "day": ["2024-01-02", None],
        "when": ["2024-01-02 10:15:00", "2024-01-03 00:00:00"],
        "code": ["0205", None],
        "n": ["1.5", None],
    }
