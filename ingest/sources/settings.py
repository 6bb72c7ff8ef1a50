"""Settings of the source adapters (``configs/sources.yaml``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from riskstrat.ingest.contract import CONTRACT
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
    contract_tables: tuple[str, ...] = Field(
        ("caseload", "opt_outs"),
        description="Contract tables supplied in the contract format in raw_dir and copied as they are.",
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
