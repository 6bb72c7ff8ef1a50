"""Code lists shipped as data: national codes mapped onto the contract's vocabularies.

Each list is one CSV in this folder with at least the columns ``code`` (the
national code, as text) and ``value`` (what it maps to), and one entry in
``manifest.yaml`` saying its coding system, version or date, source, licence
and what it maps to. The source adapters (``riskstrat.ingest.sources``), the
synthetic writer of national files and the hospital-diagnosis features all read
the lists through :func:`codelist`, so a list is changed once, here.

A list that cannot be shipped (the original eFI Read-code list is not public)
is not here; ``docs/data-contract.md`` says what is used instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).parent
MANIFEST = HERE / "manifest.yaml"


@dataclass(frozen=True)
class CodeListInfo:
    """One manifest entry.

    Attributes:
        name: The list's name; its file is ``<name>.csv`` in this folder.
        system: Coding system of ``code`` (SNOMED CT, ICD-10, dm+d, NHS Data Dictionary ...).
        version: Version or date of the source the list was taken from.
        source: Where it comes from (URL, repository and commit, publication).
        licence: The licence it is shipped under, checked before shipping.
        maps_to: What ``value`` holds (a contract column, a feature group ...).
        description: One or two sentences on what the list is for and how it was made.
    """

    name: str
    system: str
    version: str
    source: str
    licence: str
    maps_to: str
    description: str = ""

    @property
    def path(self) -> Path:
        """The list's CSV file."""
        return HERE / f"{self.name}.csv"


@cache
def manifest() -> dict[str, CodeListInfo]:
    """Every shipped code list by name, as ``manifest.yaml`` describes it."""
    entries = yaml.safe_load(MANIFEST.read_text(encoding="utf-8")) or []
    return {entry["name"]: CodeListInfo(**entry) for entry in entries}


@cache
def _read(name: str) -> pd.DataFrame:
    info = manifest().get(name)
    if info is None:
        raise KeyError(f"no code list {name!r} in {MANIFEST}; shipped: {', '.join(sorted(manifest()))}")
    return pd.read_csv(info.path, dtype=str, keep_default_na=False, encoding="utf-8")


def codelist(name: str) -> pd.DataFrame:
    """The code list ``name`` as text columns (``code``, ``value`` and any others), a fresh copy.

    Raises:
        KeyError: If no list of that name is in the manifest.
    """
    return _read(name).copy()


def code_map(name: str) -> dict[str, str]:
    """The list ``name`` as a dictionary from code to value (the first value of a repeated code)."""
    frame = _read(name)
    return dict(zip(frame["code"].iloc[::-1], frame["value"].iloc[::-1], strict=True))
