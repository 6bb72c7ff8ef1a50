"""A tiny fake national dataset for testing the adapter machinery without the real adapters.

``fake_apc`` reads ``fake_apc.csv`` (or ``.parquet``) with four fields and writes
``apc_spells``; its admission method is mapped through a two-code list, so its
coverage is known. :func:`fake_settings` disables every real source and takes the
other contract tables from contract-format files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.sources import SOURCES, register_source
from riskstrat.ingest.sources.base import (
    RawField,
    Source,
    SourceOutput,
    map_codes,
    parse_dates,
    require_values,
)
from riskstrat.ingest.sources.settings import SourceSettings

METHODS = {"21": "21", "11": "11", "EMERG": "21"}
"""The fake code list: two contract codes and one local variant."""


def _adapt(frame: pd.DataFrame) -> SourceOutput:
    ids = frame["Spell_Ident"]
    require_values(FAKE_APC, frame, "Pseudo_ID", ids)
    method, coverage = map_codes(
        FAKE_APC, "Admission_Method", frame["Admission_Method"], METHODS, "fake_methods", ""
    )
    spells = pd.DataFrame(
        {
            "spell_id": ids.astype("string"),
            "person_id": frame["Pseudo_ID"].astype("string"),
            "admission_date": parse_dates(FAKE_APC, frame, "Admission_Date", ids),
            "admission_method": method.fillna("99"),
        }
    )
    return SourceOutput({"apc_spells": spells}, [coverage], [f"{len(spells)} fake spells read"])


def _to_national(tables: Mapping[str, pd.DataFrame], rng: np.random.Generator) -> pd.DataFrame:
    spells = tables["apc_spells"]
    return pd.DataFrame(
        {
            "Spell_Ident": spells["spell_id"],
            "Pseudo_ID": spells["person_id"],
            "Admission_Date": spells["admission_date"],
            "Admission_Method": spells["admission_method"],
        }
    )


FAKE_APC = Source(
    name="fake_apc",
    title="Fake APC spells",
    file="fake_apc",
    fields=(
        RawField("Spell_Ident", "spell ID"),
        RawField("Pseudo_ID", "pseudonymised person ID"),
        RawField("Admission_Date", "admission date"),
        RawField("Admission_Method", "admission method", coded="fake"),
    ),
    writes=("apc_spells",),
    adapt=_adapt,
    to_national=_to_national,
)


@contextmanager
def registered_fake() -> Iterator[Source]:
    """Register :data:`FAKE_APC` for the duration of a test, then remove it."""
    register_source(FAKE_APC)
    try:
        yield FAKE_APC
    finally:
        SOURCES.pop(FAKE_APC.name, None)


def fake_settings(**fake: object) -> SourceSettings:
    """Every real source disabled; the fake one enabled (with ``fake`` settings); other tables as contract files."""
    sections: dict[str, dict] = {name: {"enabled": False} for name in SOURCES if name != FAKE_APC.name}
    sections[FAKE_APC.name] = dict(fake)
    tables = tuple(t for t in CONTRACT if t != "apc_spells")
    return SourceSettings(sources=sections, contract_tables=tables)


def fake_raw() -> pd.DataFrame:
    """Four spells: three mapped methods (one a local variant) and one unknown code."""
    return pd.DataFrame(
        {
            "Spell_Ident": ["S1", "S2", "S3", "S4"],
            "Pseudo_ID": ["P001", "P002", "P003", "P004"],
            "Admission_Date": ["2024-01-02", "2024-02-03", "2024-03-04", "2024-04-05"],
            "Admission_Method": ["21", "11", "EMERG", "X9"],
        }
    )


def write_raw_folder(
    folder: Path, contract_tables: Mapping[str, pd.DataFrame], fake: pd.DataFrame | None = None
) -> Path:
    """A raw folder: ``fake_apc.csv`` and every other contract table as Parquet."""
    folder.mkdir(parents=True, exist_ok=True)
    (fake if fake is not None else fake_raw()).to_csv(folder / "fake_apc.csv", index=False)
    for name, frame in contract_tables.items():
        if name != "apc_spells":
            frame.replace("", None).to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def empty_contract_tables() -> dict[str, pd.DataFrame]:
    """Every contract table with its columns and no rows (the files adapt_extract copies as they are)."""
    return {
        name: pd.DataFrame({c.name: pd.Series([], dtype="string") for c in table.columns})
        for name, table in CONTRACT.items()
    }
