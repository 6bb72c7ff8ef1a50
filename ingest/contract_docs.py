"""Render ``docs/data-contract.md`` from the contract in code, so the two never disagree.

The page opens with "Bring your data" (:mod:`riskstrat.ingest.sources_docs`: the
national datasets the adapters read, the shipped code lists, renaming columns,
the coverage report), then the contract tables themselves.
"""

from __future__ import annotations

from riskstrat.ingest.contract import CONTRACT, Column, Table
from riskstrat.ingest.sources_docs import render_bring_your_data

INTRODUCTION = """\
# The data contract

The source adapters (above) write these tables; an extract already in this
format is read as it is. riskstrat reads a folder with one file per table below, as Parquet
(`<table>.parquet`) or CSV (`<table>.csv`, UTF-8, comma-separated, a header
row). Every table must be present, even if it has no rows, except an optional
table (`social_care_events`), which may be left out: the run then goes on
without it, as it did before the table existed. Required columns
are marked **required**; optional columns may be left out or empty. Columns
not in the contract are kept but not used.

This page is generated from `ingest/contract.py` (`riskstrat docs` or
`python -m riskstrat.ingest.contract_docs`); the readers, the Great Expectations
gate and the synthetic generator all use that one definition.

## Rules for every table

- **One file per table.** `patients.parquet` and `patients.csv` side by side
  is an error naming both files: one of them is stale, and riskstrat will not
  guess which. A Spark output folder (`patients.parquet/part-*.parquet`) must be
  written out as one file. Only Parquet and uncompressed UTF-8 CSV are read:
  any other file or folder named for a table (`patients.xlsx`, `patients.xls`,
  `patients.json`, `patients.txt`, `patients.csv.gz`, `Patients.CSV`) is an
  error naming it, alone ("found only patients.xlsx, which is not read") or
  beside the table's file ("found patients.parquet and patients.xlsx"): it is
  never ignored silently.
- **IDs are pseudonymised.** `person_id` is the same pseudonym in every table.
  The NHS number never appears in these tables; a separate re-identification
  key (person_id to NHS number) may be given to the worklist export only.
- **IDs that look like NHS numbers stop the run.** An NHS number is ten digits
  (often written `999 999 9999`) whose last digit is a modulus-11 check digit.
  About 1 in 11 random ten-digit numbers carry a valid check digit by chance,
  so the rule is on the column, not the value: an ID column (`person_id`,
  `attendance_id`, `spell_id`) fails when more than half of its ten-digit
  values carry a valid check digit (`thresholds.nhs_number_share`, 0.5). A
  column of NHS numbers scores 100% and always fails, whatever its size. The
  chance that a column of random ten-digit pseudonyms fails by chance
  (simulated and exact binomial, 1 in 11 per value): 9.1% with one ten-digit
  value, 0.8% with 2, 2.3% with 3, 0.65% with 5, 0.009% with 10, 1 in a
  billion with 30 and effectively never with 100 or more (a real extract).
  What it cannot see: NHS numbers mixed into a column of ten-digit pseudonyms
  are missed while they are under about 45% of its ten-digit values (the share
  is then below 50%); mixed into pseudonyms of any other shape (`P0001234`) they
  always fail. The failure shows the shape (`9999999999`) and the row count,
  never the number; any example ID shaped like an NHS number is shown by shape
  in every other check too.
- **Text is compared and parsed exactly, never trimmed.** A value read as
  text (every CSV column, and Parquet text columns: IDs, codes, dates, numbers)
  with leading or trailing whitespace fails the gate (`text_trimmed`), naming
  the table, column, rows and an example: ASCII spaces and tabs (`"P001 "`, a
  CHAR column padded by the database) and Unicode ones (no-break space
  U+00A0, U+2000 to U+200B, U+202F, U+205F, U+3000, U+FEFF, word joiner
  U+2060). Trimming could merge distinct IDs, and the feature engine reads the
  files as they are, so a trimmed gate would pass IDs that do not join and
  dates it cannot read. A date is shown by its shape with the row's ID
  (`9999-99-99\xa0`, `person_id=P003`), never its value. Trim in the export.
- **IDs are printable ASCII; other text is printable** (`text_printable`). An ID
  column (`person_id`, `attendance_id`, `spell_id`) may hold only printable
  ASCII (U+0020 to U+007E). Pseudonymisation tools write ASCII, and anything
  else makes two people look the same on a list while the system treats them
  as two: zero-width spaces, NUL, ESC, direction overrides (U+202E), byte
  order marks, but also full-width digits (`P０03`) and look-alike letters
  (Cyrillic `Р`), which are printable but indistinguishable on screen. Other
  text columns (codes, team names) may not hold control characters (Unicode
  category Cc), format characters (Cf: zero-width spaces, U+2060, U+FEFF,
  direction marks and overrides), private-use characters (Co), line or
  paragraph separators (Zl, Zp) or spaces other than the plain space (Zs, such
  as the no-break space inside `VW North`); accented letters are fine. Examples
  show the offending characters escaped (`person_id='P123\u200b'`).
- **Codes are text**, compared exactly: department type `01`, not `1`; BNF
  `0205`, not `205`. A CSV is read as text, so leading zeros are kept. In
  Parquet, a text column (codes, LSOA, practice codes, BNF codes) stored as a
  number or true/false fails ("stored as a number: leading zeros lost; store
  as text"). ID columns may be stored as whole numbers.
- **Dates** are ISO: `YYYY-MM-DD`; date-times `YYYY-MM-DD HH:MM:SS` (a `T`
  between date and time is accepted), in ASCII digits. Other formats
  (`31/12/2024`, Excel serial numbers such as `45123`, full-width digits, a
  zero-width space inside) are rejected, naming the table, the column, the
  number of rows and the shape of the bad values, never the values themselves.
- **Numbers** (`ae_attendances.acuity`) are plain ASCII numbers in CSV (`3`,
  `3.0`, `-1.5`, `2e3`): `inf`, `NaN`, `1_000`, `3,0`, `0x3` and full-width
  digits are rejected. In Parquet, a float `NaN` is a missing value (so a
  required column fails `not_null`), and `inf` or `-inf` is rejected as not a
  finite number, naming the table, column, rows and example IDs.
- **Time zones: everything is Europe/London wall-clock time, without a zone.**
  A time-zone-aware value is converted to Europe/London time and its zone
  dropped: a Parquet timestamp stored as UTC (as Spark and Databricks write
  them), or a CSV date-time ending in `Z`, `+01:00`, `+0100` or `+01`. Its date
  is then the London calendar date, so a birth at midnight in British Summer
  Time stored as `23:00 UTC` the day before keeps its date. A naive value is
  taken to be London time already. The gate and the feature engine (DuckDB,
  and PySpark with its UTC session time zone) apply the same rule, so a
  UTC-stored extract gives the same features as a naive one. A value that cannot be converted (an offset such as `+25:00`) is
  rejected, naming the table, column, rows and the value's shape.
- **No event is dated after the extract date** (`configs/data.yaml`), after
  the person's recorded death, or before the person's birth month (birth dates
  may have month precision, so an event in the birth month is allowed).
- **A date of death before the birth month** (a placeholder such as
  `1900-01-01`) is reported once, on `patients.date_of_death`; the person's
  events are then not checked against that date, so ten event tables are not
  blamed for one bad date. The same holds for an implausible birth date.
- **Row-count baseline.** Each table's row count is compared with the last
  extract a pipeline run (the gate of the weekly run, a retrain or a feature
  build) accepted, whatever folder it came from, so a weekly extract delivered
  in a new dated folder is still compared with last week's (a change over
  `thresholds.row_count_change` warns). `riskstrat validate DIR` is a check
  only: it compares DIR with that baseline and never changes it.
- **LSOA** is the 2011 LSOA of residence (English codes, `E01...`), which the
  IMD 2019 lookup shipped with riskstrat covers.

## Mapping national data sets onto the contract

| table | national source | how it is made from the raw files |
| --- | --- | --- |
| patients | GP registrations and demographics (GDPPR style) | `gp_registrations`: latest registration per person; ethnicity SNOMED CT or letters through `snomed_ethnicity`; LSOA 2021 to 2011 through `lsoa2021_lsoa2011` |
| gp_diagnoses | GP coded events (SNOMED CT) | `gp_events`: codes through `snomed_conditions` (the eFI2 Baseline2 condition groups and the primary care domain resolved codes), with status `resolved` and recorded eFI scores as `value` |
| gp_appointments | GPAD / practice system | `gp_appointments`: mode and status through the GPAD lists |
| gp_medications | GP prescribing | `gp_medications`: BNF code cut to chapter and section (`0205`), or dm+d through a dm+d to BNF list when shipped |
| community_contacts | CSDS care contacts | `csds`: latest submission of each contact; team type through `csds_service_type` |
| ae_attendances | ECDS | `ecds`: arrival mode, acuity, discharge status and destination, chief complaint through the ECDS refset lists |
| apc_spells | SUS+ APC spells | `sus_apc`: discharge destination through `sus_discharge_destination`; ICD-10 primary and all diagnoses normalised and checked against `icd10_categories` |
| caseload | local virtual ward / proactive care system | contract format (`sources.contract_tables`) |
| opt_outs | type 1 and National Data Opt-out lists | contract format; `type1` is honoured by default when building worklists (see `configs/mdts.yaml`) |
| social_care_events (optional) | Adult Social Care Client Level Data (CLD) | `cld`: latest return of each event; text values through `cld_values`; rows without a pseudonymised NHS number left out (see the table below) |
"""

SOCIAL_CARE_NOTES = """
### From the national Client Level Data

Every local authority (LA) sends its Adult Social Care Client Level Data (CLD)
to NHS England each quarter; an ICB receives it pseudonymised, linkable to
health data. The `cld` adapter reads it with the national field names (rename
local ones under `sources.cld.columns` in `configs/sources.yaml`):

| CLD field | contract column | how |
| --- | --- | --- |
| `Der_NHS_Number_Traced_Pseudo`, else `Der_NHS_Number_Pseudo` | `person_id` | the traced number wins; rows with neither (an LA person ID only) are counted and left out |
| `LA_Code` | `la_code` | ONS code of a social-services authority (E06, E08, E09, E10); anything else stops the adapter naming the rows |
| `Reporting_Period_End_Date` | `reporting_period_start` | first day of its quarter (rolling 12-month and quarter-only returns read alike); `Reporting_Period_Start_Date` is read for reference |
| `Event_Type` | `event_type` | Request (or Referral), Assessment, Service, Review; rows with none (carers known by association) or an unknown one are counted and left out |
| `Event_Start_Date`, `Event_End_Date` | `event_start_date`, `event_end_date` | ISO dates; an empty end is an event still open at the end of the return's period |
| `Client_Type` | `client_type` | Service User -> `service_user`; Carer, Unpaid carer (and known by association) -> `carer` |
| `Service_Type` | `service_type` (services only) | Long Term Support: Nursing Care / Residential Care / Community -> `long_term_nursing` / `long_term_residential` / `long_term_community`; Short Term Support: ST-Max -> `short_term_reablement`; Ongoing Low Level, Other Short Term -> `short_term_other`; Prison and carer support are recognised and left empty |
| `Service_Component` | `service_component` (services only) | Home Support -> `home_care`, Direct Payment -> `direct_payment`, Community Supported Living, Shared Lives, Extra Care Housing -> `supported_living`, Day Support -> `day_care`, residential and nursing care -> `residential` / `nursing`, Reablement, Equipment, Carer Respite -> `respite`, the rest -> `other` |
| `Primary_Support_Reason` | `primary_support_reason` | Physical Support: Personal care support / Access & mobility only, Sensory Support (any), Support with Memory and Cognition, Learning Disability Support, Mental Health Support, Social Support (any), Unknown |
| `Accommodation_Status` | `accommodation_status` | owner occupier, tenants and settled housing with family -> `own_home`; registered care or nursing home -> `care_home`; supported accommodation, Shared Lives, sheltered or extra care housing -> `supported_accommodation`; homeless, temporary, hospital, prison -> `other`; Unknown -> `not_known` |
| `ImportDate` | (none) | orders two loads of the same period's return |

Text values are compared without case, `&` as `and`, and without the spaces
around `/ : , ( ) -` (returns vary); every value is in the `cld_values` code
list, and an unknown one is reported in the mapping coverage with its count,
never dropped silently. LAs resubmit, and each return covers a rolling 12
months, so one event comes in several returns: an event (LA, person, event
type, start date, client type and, for services, raw service type and
component: the DHSC "unique event") keeps the row of its latest return
(`Reporting_Period_End_Date`, then `ImportDate`), and the number removed is a
note of the run.

**Missing returns.** A quarter's return is due 60 days after the quarter ends
(`SOCIAL_CARE_RETURN_DUE_DAYS`). The validation gate lists, for every expected
LA, the quarters from the first one (`social_care.first_quarter`, default the
earliest in the data) to the last one due by the run's data date
(`data.extract_date`, else the latest event date of the health tables, as the
weekly run takes it; not the day the check runs), and warns once
per LA-quarter with no return ("a CLD return from Walsall (E08000030) for
Apr-Jun 2026 (due 29 Aug 2026); none received"): on `riskstrat validate`, in
the run's warnings and on the Data Docs page ("Social care returns"). A
quarter not yet due is never missing. Expected LAs are
`social_care.local_authorities`, or else those where at least 1% of the
registered people live (from their LSOA: the LAD 2019 code of the IMD 2019
file; for a two-tier shire district, E07, give the authority that sends its
return in `social_care.county_of_district`: its county (E10), or, for an area
reorganised since 2019, the new unitary (E06), not the old county, e.g.
Aylesbury Vale `{E07000004: E06000060}` (Buckinghamshire); likewise Cumberland
E06000063, Westmorland and Furness E06000064, North Yorkshire E06000065,
Somerset E06000066, North and West Northamptonshire E06000061/E06000062). A
missing return is never read as "no care". The features are computed as of the latest quarterly return due at the
as-of date (the end of the latest quarter whose return is due by then), and a
person's social care is *not known* when their LA's return for that quarter is
missing. Each return covers the 12 months to its quarter's end, so an older
missing quarter is covered by a later return received: it is still reported
here and on "About this list", but does not make care unknown.

**Which returns arrived.** The CLD adapter records every (LA, quarter) return it
reads in `social_care_returns` before it keeps each event's latest return: a
rolling return whose events all come again in a later return keeps no rows in
`social_care_events`, yet was received. An ICS supplying `social_care_events`
in the contract format should supply `social_care_returns` too; without it the
returns are inferred from `social_care_events` (a quarter with rows there was
received), which can read such a return as missing.
"""

RETURNS_NOTES = """
One row per CLD return read (an extract may split one return's count over
several rows: they are summed). The gate's returns check, `social_care_known`,
the MDT row and "About this list" read the returns received from this table
when it is present, and from `social_care_events` otherwise (see above).
"""

TABLE_NOTES: dict[str, str] = {"social_care_events": SOCIAL_CARE_NOTES, "social_care_returns": RETURNS_NOTES}
"""Extra text after a table's columns: how it is made from its national source."""


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
    if table.optional:
        lines.append("Optional: an extract may leave this table out, and the run goes on without it.")
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
    return "\n".join(lines) + "\n" + TABLE_NOTES.get(table.name, "")


def render_contract_docs() -> str:
    """Return the Markdown text of ``docs/data-contract.md``."""
    sections = [
        render_bring_your_data(),
        INTRODUCTION,
        *(_table_section(table) for table in CONTRACT.values()),
    ]
    return "\n".join(sections)


if __name__ == "__main__":
    print(render_contract_docs(), end="")
