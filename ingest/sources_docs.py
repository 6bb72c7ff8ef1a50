"""Render the "Bring your data" part of ``docs/data-contract.md`` from the source adapters and the code lists.

Each national dataset's section comes from its :class:`~riskstrat.ingest.sources.base.Source`
(title, default file, fields read, contract tables written) and its module's
docstring (what it maps and what it leaves out); the code lists it uses are the
manifest entries its module names; the code-list table is the manifest itself.
So the page follows the adapters and the shipped lists without being edited by hand.
"""

from __future__ import annotations

import inspect
import re
import sys

from riskstrat.ingest.codelists import codelist, manifest
from riskstrat.ingest.sources import SOURCES
from riskstrat.ingest.sources.base import Source

BRING_YOUR_DATA = """\
# Bring your data

riskstrat reads an ICB's data in one of two ways, and the validation gate checks
both the same way:

1. **Raw national files** (the usual way): SUS+ Admitted Patient Care spells, the
   Emergency Care Data Set (ECDS), Community Services Data Set (CSDS) care contacts
   and GP data (registrations and demographics, coded events, medication issues,
   appointments), with the field names ICB analysts see in the national data
   warehouse. Put one file per dataset in `sources.raw_dir` (`configs/sources.yaml`,
   default `outputs/raw`) as Parquet or UTF-8 CSV, named as in the sections below
   (or set `file:`), plus the two local tables in the contract format (`caseload`,
   `opt_outs`: `sources.contract_tables`). Then

       riskstrat adapt            # raw_dir -> data.extract_dir, with mapping_coverage.json
       riskstrat validate         # the gate, now with a "Mapping coverage" check per coded field

   `riskstrat adapt` (the Prefect flow `read-national-extracts`) runs every enabled
   adapter, maps each coded field through the shipped code lists
   (`ingest/codelists/`, table below), writes the contract tables to
   `data.extract_dir` and writes `mapping_coverage.json` beside them. The extract
   folder is swapped in only when every adapter succeeded: a failed run leaves last
   week's extract as it was. A malformed raw file (a missing field, a date that does
   not parse, an empty required ID) stops the run naming the dataset, the field, the
   number of rows and up to five example pseudonymised IDs; nothing is written.
   `make demo` runs this way: the synthetic population is written as raw national
   files (`outputs/raw/`) and read back through the adapters.

   Files of any size are read in batches of `sources.batch_rows` rows (1,000,000 by
   default; Parquet by record batch, CSV by block), each batch mapped and appended to
   its contract table, so memory does not grow with the file (at 250,000 people the
   adapters' peak fell from 2.3 to 0.7 GiB). Registrations, CSDS and CLD, which keep one
   row per person, per contact or per event, are first spread over temporary files by person
   (in `TMPDIR`; CLD's person is the traced pseudonym, else the one the LA sent), so the
   latest registration, submission or return is found exactly. The
   tables, the coverage and the notes are those of one read of the whole file (rows
   of those tables may come in another order; `social_care_returns` is combined from the
   batches into one row per return). A file that breaks the contract in
   several batches is reported once, its rows counted over the whole file. With
   `backend: pyspark` the adapters run on Spark instead (see
   [scale-out](scale-out.md)).
2. **The contract format**: one file per contract table (second half of this page)
   in `data.extract_dir`, with `sources.raw_dir` left empty; `riskstrat adapt` is then
   not run, and no coverage checks apply. `riskstrat generate` (without
   `--national`) writes this format.

## Renaming columns

Column names are settings, so a local warehouse whose columns differ renames rather
than reshapes. In `configs/sources.yaml`, under the dataset's name, map the national
field name to your column's name, and set the file stem if yours differs:

```yaml
raw_dir: /data/icb/2026-11-30
sources:
  sus_apc:
    file: apcs_2026_q3
    columns:
      Der_Pseudo_NHS_Number: Pseudo_NHS_No
      Der_Diagnosis_All: All_Diagnoses
  csds:
    enabled: false          # no CSDS: give community_contacts in the contract format instead
contract_tables: [caseload, opt_outs, community_contacts]
```

An unknown dataset name, or a `columns` key that is not one of the dataset's fields,
stops at start-up naming the valid ones. A required field missing from a file is
named with both names ("the field Der_Pseudo_NHS_Number (renamed to Pseudo_NHS_No in
configs/sources.yaml)"). A contract table given both by an adapter and in
`contract_tables` is refused: one of them would be silently ignored.

## Reading the coverage report

Nothing is lost silently. For every coded field of every dataset read, the adapters
record the rows with a value, the rows whose code the shipped list recognised, the
ten most frequent unrecognised codes with their counts, and the rows whose code
looks like another coding system (a Read v2 / CTV3 code in a SNOMED CT field, an
OPCS-4 procedure code among ICD-10 diagnoses, a SNOMED CT dm+d code in a BNF field).
Only codes and counts are kept, never a person. You find it in:

- the **Data Docs**: the "Mapping coverage" link on each validation's page, `data_docs/<extract>/index.html`
  opens a table per dataset and field: share mapped, rows, unmapped rows,
  wrong-system rows, the result, and the top unmapped codes;
- the **validation report** (`validation/latest.json`): `mapping_coverage` (one record
  per field) and one `mapping_coverage` check per field in `results`, plus a
  `wrong_system_codes` check for each field holding codes of another system;
- `riskstrat validate` prints the same table; `riskstrat adapt` and the demo summary
  print the lowest-coverage field.

Limits are `mapping_coverage` in `configs/validation.yaml`: a field whose share mapped
is below `warning_below` (default 0.99) warns, below `critical_below` (default 0.90)
stops the run before anything is built from the extract, like any critical check.
Per-field limits are keyed `<dataset>.<field>`: ECDS acuity
(`ecds.EC_Acuity_SNOMED_CT`) is critical below 0.95, because acuity drives the A&E
features. Codes of another system warn (`wrong_system`).

What to do with a low share: look at the top unmapped codes. A local code or a
retired code that should map is added to the code list's CSV (and noted in
`ingest/codelists/README.md`); codes of another system usually mean a column holds
the wrong field (a Read code column mapped to the SNOMED CT field) or an old extract;
a dummy value (`999999999999`, `X`) is a data-quality issue to raise with the
supplier. GP coded events are a special case: a full GP journal holds many codes that
are not conditions (blood pressures, vaccinations, letters), so their share says how
much of the extract is conditions; their limits are set low in
`configs/validation.yaml` and only a share that low enough to mean the wrong column
(or the wrong coding system) stops the run.

## What is lost on the way in

The contract is the single internal model, so a raw field the contract has no place
for is not kept. Per dataset (details in each section below):

- fields not listed in a dataset's table are not read (for example ECDS investigations
  and treatments, SUS+ procedures (OPCS-4), episode-level detail, CSDS activity
  beyond the contact and its team type);
- codes not in a list are left out of the contract table and counted in the coverage
  (GP codes that are not conditions, ECDS complaints and diagnoses not in the refsets,
  ICD-10 codes whose category does not exist, CSDS team types the models do not use);
- duplicates are resolved as the national datasets intend and counted in a note: the
  latest CSDS submission of each care contact, the latest GP registration of each person;
- the original eFI Read-code list is not public and is not shipped; frailty deficits
  come from the open eFI2 (DynAIRx Baseline2) SNOMED CT list instead, and a recorded
  eFI or eFI2 score is read when the GP data carry one;
- no dm+d to BNF map is shipped yet (the NHSBSA SNOMED-BNF mapping is published under the
  Open Government Licence but could not be obtained here): medication issues with a dm+d
  code and no `BNF_Code` are left out and counted in the coverage of `CODE`. Supply
  `BNF_Code`, or add the map as a `dmd_bnf` code list (`code` = dm+d ID, `value` = BNF code)
  with its manifest entry, and the adapter uses it;
- GP coded events are dated by their clinical `DATE` (`RECORD_DATE` only when `DATE` is
  empty): a code entered later but dated in the past (a history code, a resolved code or
  an eFI score keyed in afterwards) counts from its clinical date, so back-tested and
  training features can see slightly more than the record held at the time; the weekly
  scores are not affected;
- the Baseline2 look-back and age limits (`lookback_years`, `age_limit` in
  `snomed_conditions.csv`, e.g. falls in the last 5 years) are shipped but not yet applied:
  a coded condition or deficit counts from its first record, as the contract's
  `gp_diagnoses` always has (a resolved code ends it);
- a recorded eFI value above 1 is read as a percentage and divided by 100, value by value;
  a feed in percentages with values of 1 or below would be misread;
- 119 of the 216 ECDS chief-complaint refset members have no description reachable here
  and are grouped `other` (marked `unchecked` in `ecds_chief_complaint.csv`), so the
  complaint-group features undercount for them.

## LSOA 2011 and 2021

IMD 2019 is published on LSOA 2011, so `patients.lsoa_code` is an LSOA 2011 code.
GP registrations may carry 2011 or 2021 codes: a 2021 code that is also a 2011 code
(most are unchanged) passes through; a code new in 2021 is mapped to its 2011 best fit
through the ONS LSOA 2011 to LSOA 2021 best-fit lookup (Open Government Licence;
list `lsoa2021_lsoa2011`). The best-fit lookup has one row per 2011 LSOA, so where a
2011 LSOA was split in 2021 only one of its children is in it; the others (about 1,000
codes in England) are not mapped by the shipped list, although each has one 2011 parent
in the ONS exact-fit lookup, which could not be obtained here. Such a code is kept as it is, counted as unmapped
in the coverage of the LSOA field, and the gate's `lsoa_in_imd_lookup` check reports
the share of patients whose LSOA has no IMD 2019 decile (a warning above 1%, critical
above 5%); those people get no deprivation decile.
"""


def _module_doc(source: Source) -> str:
    """The docstring of the module defining ``source``'s adapter (its own words on what it maps and drops)."""
    module = sys.modules.get(source.adapt.__module__)
    return inspect.cleandoc(module.__doc__ or "") if module else ""


def _source_text(module_name: str, seen: set[str]) -> str:
    """A sources module's code, with that of the sibling modules it imports (e.g. the LSOA helper)."""
    module = sys.modules.get(module_name)
    if module is None or module_name in seen:
        return ""
    seen.add(module_name)
    try:
        text = inspect.getsource(module)
    except (OSError, TypeError):
        return ""
    siblings = re.findall(r"from riskstrat\.ingest\.sources\.(\w+) import", text)
    return text + "".join(
        _source_text(f"riskstrat.ingest.sources.{s}", seen) for s in siblings if s not in ("base", "settings")
    )


def lists_used(module_name: str) -> list[str]:
    """The shipped code lists a sources module names (quoted list names in its code or its helpers')."""
    quoted = set(re.findall(r"""["']([a-z0-9_]+)["']""", _source_text(module_name, set())))
    return sorted(name for name in manifest() if name in quoted)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _field_table(source: Source) -> list[str]:
    lines = [
        f"**{source.title}** (`{source.name}`): file `{source.file}.parquet` or `{source.file}.csv` in "
        f"`sources.raw_dir`; writes {', '.join(f'`{t}`' for t in source.writes)}.",
        "",
        "| field | required | coded | what it holds |",
        "| --- | --- | --- | --- |",
    ]
    for f in source.fields:
        required = "**required**" if f.required else "optional"
        lines.append(f"| `{f.name}` | {required} | {_cell(f.coded)} | {_cell(f.description)} |")
    return [*lines, ""]


def _module_section(module_name: str, sources: list[Source]) -> str:
    """One section per adapter module (the GP module holds three sources): its docstring, lists and fields."""
    title = sources[0].title if len(sources) == 1 else "GP data: " + ", ".join(s.title for s in sources)
    lines = [f"## {title}", ""]
    doc = _module_doc(sources[0])
    if doc:
        lines += [doc, ""]
    used = lists_used(module_name)
    if used:
        lines += [f"Code lists: {', '.join(f'`{name}`' for name in used)}.", ""]
    for source in sources:
        lines += _field_table(source)
    return "\n".join(lines)


def _codelist_table() -> str:
    lines = [
        "## Shipped code lists",
        "",
        "Each list is a CSV in `ingest/codelists/` (`code`, `value` and any other columns, all text) with an entry "
        "in `manifest.yaml`; provenance and trimming notes are in `ingest/codelists/README.md`. Licences were "
        "checked before shipping.",
        "",
        "| list | rows | system | version | licence | maps to |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for info in sorted(manifest().values(), key=lambda i: i.name):
        try:
            rows = f"{len(codelist(info.name)):,}"
        except (OSError, KeyError, ValueError):
            rows = "?"
        lines.append(
            f"| `{info.name}` | {rows} | {_cell(info.system)} | {_cell(info.version)} | "
            f"{_cell(info.licence)} | {_cell(info.maps_to)} |"
        )
    return "\n".join(lines) + "\n"


def render_bring_your_data() -> str:
    """The "Bring your data" half of ``docs/data-contract.md``."""
    modules: dict[str, list[Source]] = {}
    for source in SOURCES.values():
        modules.setdefault(source.adapt.__module__, []).append(source)
    sections = [BRING_YOUR_DATA, *(_module_section(m, s) for m, s in modules.items()), _codelist_table()]
    return "\n".join(sections)
