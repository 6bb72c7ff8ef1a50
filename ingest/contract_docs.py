"""Render ``docs/data-contract.md`` from the contract in code, so the two never disagree."""

from __future__ import annotations

from riskstrat.ingest.contract import CONTRACT, Column, Table

INTRODUCTION = """\
# The data contract

riskstrat reads a folder with one file per table below, as Parquet
(`<table>.parquet`) or CSV (`<table>.csv`, UTF-8, comma-separated, a header
row). Every table must be present, even if it has no rows. Required columns
are marked **required**; optional columns may be left out or empty. Columns
not in the contract are kept but not used.

This page is generated from `ingest/contract.py` (`riskstrat docs` or
`python -m riskstrat.ingest.contract_docs`); the readers, the Great Expectations
gate and the synthetic generator all use that one definition.

## Rules for every table

- **IDs are pseudonymised.** `person_id` is the same pseudonym in every table.
  The NHS number never appears in these tables; a separate re-identification
  key (person_id to NHS number) may be given to the worklist export only.
- **Dates** are ISO: `YYYY-MM-DD`; date-times `YYYY-MM-DD HH:MM:SS` (a `T`
  between date and time is accepted). Other formats (`31/12/2024`) are
  rejected, naming the table, the column, the number of rows and the shape of
  the bad values, never the values themselves.
- **Codes** are text, compared exactly: department type `01`, not `1`.
- **No event is dated after the extract date** (`configs/data.yaml`) or after
  the person's recorded death.
- **LSOA** is the 2011 LSOA of residence (English codes, `E01...`), which the
  IMD 2019 lookup shipped with riskstrat covers.

## Mapping national data sets onto the contract

| table | national source | notes for the analyst |
| --- | --- | --- |
| patients | GP registration extract / PDS | one row per person registered at any point in the period; keep deregistered and deceased people with their end and death dates, so cohorts at past dates are right |
| gp_diagnoses | GP extract (SNOMED CT) | map SNOMED CT codes to the condition vocabulary (`ingest/reference/conditions.csv`) with the project's cluster map (for example QOF and eFI code clusters); one row per condition per date recorded |
| gp_appointments | GPAD / practice system | mode from the appointment mode; `dna` for did-not-attend |
| gp_medications | GP prescribing | one row per issue; BNF chapter and section (`0205`) is enough |
| community_contacts | CSDS care contacts | map CSDS team types to the eight services |
| ae_attendances | ECDS | arrival mode and acuity from the ECDS SNOMED CT codes; disposal from the discharge destination |
| apc_spells | SUS APC (spells) | admission method as ADMIMETH; one row per hospital provider spell |
| caseload | local virtual ward / proactive care system | people on an existing caseload, with start and end |
| opt_outs | type 1 and National Data Opt-out lists | `type1` is honoured by default when building worklists (see `configs/mdts.yaml`) |
"""


def _codes(column: Column) -> str:
    if not column.codes:
        return ""
    return ", ".join(f"`{code}`" for code in column.codes)


def _table_section(table: Table) -> str:
    lines = [
        f"## `{table.name}`",
        "",
        f"One row per {table.grain}. Source: {table.source}.",
    ]
    if table.key:
        lines.append(f"`{table.key}` is unique.")
    if table.event_date:
        lines.append(f"Events are dated by `{table.event_date}`.")
    for earlier, later in table.date_pairs:
        lines.append(f"`{later}` must not be before `{earlier}`.")
    lines += [
        "",
        "| column | type | required | allowed codes | meaning | NHS source |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for column in table.columns:
        required = "**required**" if column.required else "optional"
        lines.append(
            f"| `{column.name}` | {column.type} | {required} | {_codes(column)} "
            f"| {column.description} | {column.source} |"
        )
    return "\n".join(lines) + "\n"


def render_contract_docs() -> str:
    """Return the Markdown text of ``docs/data-contract.md``."""
    sections = [INTRODUCTION, *(_table_section(table) for table in CONTRACT.values())]
    return "\n".join(sections)


if __name__ == "__main__":
    print(render_contract_docs(), end="")
