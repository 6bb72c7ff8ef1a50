"""Settings of the source adapters (``configs/sources.yaml``)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from pydantic import Field, model_validator

from riskstrat.ingest.contract import CONTRACT
from riskstrat.ingest.social_care import DISTRICT_CODE_PATTERN, LA_CODE_PATTERN
from riskstrat.settings import Settings


class SourceFileSettings(Settings):
    """One national dataset: whether it is read, its file and any renamed columns."""

    enabled: bool = Field(
        True, description="Read this dataset (false: its contract tables come from contract_tables)."
    )
    file: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Raw file stem in raw_dir (<file>.parquet or <file>.csv); empty: the source's default name.",
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="National field name -> the column's name in your files, for columns named differently.",
    )


class SocialCareSettings(Settings):
    """The social care source (CLD): which local authorities must send returns, and from when."""

    local_authorities: tuple[str, ...] = Field(
        (),
        description=(
            "ONS codes of the local authorities expected to send CLD returns (E06, E08, E09, E10). "
            "Empty: the authorities where at least 1% of the registered people live (from their LSOAs)."
        ),
    )
    first_quarter: date | None = Field(
        None,
        description="First quarter whose return is expected (any day in it). Empty: the earliest quarter in the data.",
    )
    county_of_district: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Two-tier areas: shire district (E07, LAD 2019) -> the authority that runs its social services "
            "and sends its CLD return, so people living in the district are expected in that authority's "
            "returns: the county (E10), or, where the area has been reorganised since 2019, the new "
            "unitary (E06), e.g. Aylesbury Vale E07000004 -> Buckinghamshire E06000060 (also Cumberland "
            "E06000063, Westmorland and Furness E06000064, North Yorkshire E06000065, Somerset E06000066, "
            "North and West Northamptonshire E06000061/E06000062), not the old county."
        ),
    )

    @model_validator(mode="after")
    def _codes(self) -> SocialCareSettings:
        bad = [
            c
            for c in (*self.local_authorities, *self.county_of_district.values())
            if not re.match(LA_CODE_PATTERN, c)
        ]
        # A shire district (E07) is only ever a key: the authority it maps to sends the returns.
        bad += [c for c in self.county_of_district if not re.match(DISTRICT_CODE_PATTERN, c)]
        if bad:
            raise ValueError(
                f"not an ONS local authority code: {', '.join(sorted(set(bad)))} (e.g. E08000030)"
            )
        return self


class SourceSettings(Settings):
    """Where raw national files are read from and how (``configs/sources.yaml``)."""

    raw_dir: Path | None = Field(
        Path("outputs/raw"),
        description=(
            "Folder of raw national files (SUS+ APC, ECDS, CSDS, GP). The adapters write contract tables to "
            "data.extract_dir. Empty: no adapters run; data.extract_dir already holds contract tables."
        ),
    )
    sources: dict[str, SourceFileSettings] = Field(
        default_factory=dict,
        description="Per dataset (sus_apc, ecds, csds, gp_registrations, ...): enabled, file and column renames.",
    )
    batch_rows: int | None = Field(
        1_000_000,
        ge=1,
        description=(
            "Raw rows adapted at a time (a Parquet file is read by record batch, a CSV file by block): "
            "bounds the adapters' memory whatever the file's size. Empty: each file is read whole."
        ),
    )
    contract_tables: tuple[str, ...] = Field(
        ("caseload", "opt_outs"),
        description="Contract tables supplied in the contract format in raw_dir and copied as they are.",
    )

    social_care: SocialCareSettings = Field(
        default_factory=SocialCareSettings,
        description="The social care source (CLD): expected local authorities, first quarter, two-tier areas.",
    )

    @model_validator(mode="after")
    def _known_names(self) -> SourceSettings:
        from riskstrat.ingest.sources import SOURCES

        unknown = sorted(set(self.sources) - set(SOURCES))
        if unknown:
            raise ValueError(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(SOURCES)}")
        for name, section in self.sources.items():
            fields = set(SOURCES[name].field_names)
            bad = sorted(set(section.columns) - fields)
            if bad:
                raise ValueError(
                    f"sources.{name}.columns: {', '.join(bad)} is not a field of {SOURCES[name].title}; "
                    f"fields: {', '.join(SOURCES[name].field_names)}"
                )
        tables = sorted(set(self.contract_tables) - set(CONTRACT))
        if tables:
            raise ValueError(f"contract_tables: {', '.join(tables)} is not a contract table")
        return self

    def section(self, name: str) -> SourceFileSettings:
        """The settings of source ``name`` (defaults when the file does not mention it)."""
        return self.sources.get(name, SourceFileSettings())
