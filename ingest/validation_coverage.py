"""Mapping coverage in the validation gate: one check per coded field of the raw national files.

``riskstrat adapt`` writes ``mapping_coverage.json`` beside the contract tables
(:meth:`~riskstrat.ingest.sources.extract.AdaptedExtract.coverage_payload`): per
source and per coded field, the rows with a value, the rows mapped and the most
frequent unmapped codes. The gate reads it when present and turns each field into
a check against ``mapping_coverage`` in ``configs/validation.yaml``, plus a check
naming codes of another coding system. An extract supplied in the contract format
has no such file, and nothing here runs.

Only codes and counts are read and reported, never a person.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskstrat.catalog import MAPPING_COVERAGE
from riskstrat.errors import ContractError, ContractProblem
from riskstrat.ingest.validation_settings import MappingCoverageSettings, Severity

COVERAGE_KIND = "mapping_coverage"
WRONG_SYSTEM_KIND = "wrong_system_codes"
SYSTEM_NAMES = {
    "snomed": "SNOMED CT",
    "read": "Read v2 / CTV3",
    "icd10": "ICD-10",
    "opcs4": "OPCS-4",
    "bnf": "BNF",
}
"""How each coding system (:func:`riskstrat.ingest.codes.code_system`) is named in the report."""
SHOWN_CODES = 5
"""Unmapped codes shown as a failed check's examples (the JSON and Data Docs keep the top ten)."""


@dataclass(frozen=True)
class CoverageCheck:
    """One coded field's coverage judged against its limits.

    Attributes:
        source: Source name (``ecds``).
        field: National field name.
        codelist: The code list used.
        rows: Rows with a value.
        mapped: Rows mapped.
        share: ``mapped / rows`` (1.0 when no row has a value).
        warning_below: The field's warning limit.
        critical_below: The field's critical limit.
        status: ``pass``, ``warning`` or ``critical``.
        unmapped: The most frequent unmapped codes: code, rows and the system it looks like.
        wrong_system: Rows whose code looks like another coding system.
    """

    source: str
    field: str
    codelist: str
    rows: int
    mapped: int
    share: float
    warning_below: float
    critical_below: float
    status: str
    unmapped: tuple[dict[str, Any], ...]
    wrong_system: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (codes and counts only)."""
        return {
            "source": self.source,
            "field": self.field,
            "codelist": self.codelist,
            "rows": self.rows,
            "mapped": self.mapped,
            "share": round(self.share, 6),
            "warning_below": self.warning_below,
            "critical_below": self.critical_below,
            "status": self.status,
            "wrong_system": self.wrong_system,
            "unmapped": list(self.unmapped),
        }


def read_coverage(extract_dir: Path) -> dict[str, Any] | None:
    """The adapters' coverage payload in ``extract_dir``, or None when the extract has none.

    Raises:
        ContractError: If the file is there but is not the JSON ``riskstrat adapt`` writes.
    """
    path = Path(extract_dir) / MAPPING_COVERAGE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        fields = payload["fields"]
        if not isinstance(fields, list) or not all(isinstance(f, dict) for f in fields):
            raise TypeError("fields is not a list of records")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ContractError(
            [
                ContractProblem(
                    MAPPING_COVERAGE, "", f"the mapping coverage written by riskstrat adapt ({exc})"
                )
            ],
            hint="Run `riskstrat adapt` again, or remove the file if the extract is in the contract format.",
        ) from None
    return payload


def judge(record: dict[str, Any], settings: MappingCoverageSettings) -> CoverageCheck:
    """Judge one field's coverage record against its limits."""
    source, field = str(record.get("source", "")), str(record.get("field", ""))
    rows, mapped = int(record.get("rows", 0)), int(record.get("mapped", 0))
    share = mapped / rows if rows else 1.0
    warning, critical = settings.limits(source, field)
    status = "critical" if share < critical else ("warning" if share < warning else "pass")
    unmapped = tuple(
        {"code": str(u.get("code", "")), "rows": int(u.get("rows", 0)), "system": str(u.get("system", ""))}
        for u in record.get("unmapped", [])
    )
    return CoverageCheck(
        source,
        field,
        str(record.get("codelist", "")),
        rows,
        mapped,
        share,
        warning,
        critical,
        status,
        unmapped,
        int(record.get("wrong_system", 0)),
    )


def shown_codes(check: CoverageCheck, limit: int = SHOWN_CODES) -> tuple[str, ...]:
    """The most frequent unmapped codes as ``code (n rows)``, naming another system when the code looks like one."""
    shown = []
    for u in check.unmapped[:limit]:
        system = f", {SYSTEM_NAMES.get(u['system'], u['system'])}" if u["system"] else ""
        shown.append(f"{u['code']} ({u['rows']:,} rows{system})")
    return tuple(shown)


def wrong_system_sentence(check: CoverageCheck) -> str:
    """``12 rows look like codes of another system (Read v2 / CTV3: 10 rows among the most frequent)``."""
    by_system: dict[str, int] = {}
    for u in check.unmapped:
        if u["system"]:
            name = SYSTEM_NAMES.get(u["system"], u["system"])
            by_system[name] = by_system.get(name, 0) + u["rows"]
    named = ", ".join(
        f"{name}: {rows:,} rows" for name, rows in sorted(by_system.items(), key=lambda x: -x[1])
    )
    rows = f"{check.wrong_system:,} row{'s' if check.wrong_system != 1 else ''}"
    if len(by_system) == 1:
        return f"{rows} look like {next(iter(by_system))} codes"
    return f"{rows} look like codes of another system" + (
        f" ({named} among the most frequent)" if named else ""
    )


def coverage_expected(check: CoverageCheck) -> str:
    """What the check expected, with what was found and the limit that applies."""
    limit = check.critical_below if check.status == "critical" else check.warning_below
    level = "critical" if check.status == "critical" else "warning"
    found = f"; found {check.share:.1%} of {check.rows:,} rows mapped by {check.codelist}"
    if check.status == "pass":
        return f"at least {check.warning_below:.1%} of codes recognised by {check.codelist}{found}"
    return (
        f"at least {limit:.1%} of codes recognised by {check.codelist} "
        f"(mapping_coverage {level} below {limit:.0%} for {check.source}.{check.field}){found}"
    )


def coverage_results(
    payload: dict[str, Any], settings: MappingCoverageSettings
) -> tuple[list[CoverageCheck], list[tuple[str, str, str, Severity, str, int, int, tuple[str, ...], bool]]]:
    """Judge every field of a coverage payload.

    Returns:
        The judged fields, and one result tuple per check (table, column, kind,
        severity, expected, rows failing, rows checked, examples, passed) for the
        gate's report: the coverage check of every field, and a wrong-system check
        for each field holding codes of another system.
    """
    checks = [judge(record, settings) for record in payload.get("fields", [])]
    results = []
    for check in checks:
        severity: Severity = "critical" if check.status == "critical" else "warning"
        results.append(
            (
                check.source,
                check.field,
                COVERAGE_KIND,
                severity,
                coverage_expected(check),
                check.rows - check.mapped,
                check.rows,
                shown_codes(check) if check.status != "pass" else (),
                check.status == "pass",
            )
        )
        if check.wrong_system:
            others = CoverageCheck(
                **{**check.__dict__, "unmapped": tuple(u for u in check.unmapped if u["system"])}
            )
            wrong = shown_codes(others)
            results.append(
                (
                    check.source,
                    check.field,
                    WRONG_SYSTEM_KIND,
                    settings.wrong_system,
                    f"no codes of another coding system; {wrong_system_sentence(check)}",
                    check.wrong_system,
                    check.rows,
                    wrong,
                    False,
                )
            )
    return checks, results


def coverage_page(checks: list[CoverageCheck], notes: list[str], files: dict[str, str]) -> str:
    """The Data Docs "Mapping coverage" page: per source, per field, share mapped, rows and top unmapped codes."""
    esc = html.escape
    rows = []
    colour = {"pass": "#e6f4ea", "warning": "#fff4ce", "critical": "#fde7e9"}
    for c in sorted(checks, key=lambda c: (c.source, c.field)):
        unmapped = "<br>".join(esc(s) for s in shown_codes(c, len(c.unmapped))) or "&ndash;"
        wrong = f"{c.wrong_system:,}" if c.wrong_system else "&ndash;"
        rows.append(
            f"<tr style='background:{colour[c.status]}'><td>{esc(c.source)}</td><td>{esc(c.field)}</td>"
            f"<td>{esc(c.codelist)}</td><td style='text-align:right'>{c.share:.1%}</td>"
            f"<td style='text-align:right'>{c.rows:,}</td><td style='text-align:right'>{c.rows - c.mapped:,}</td>"
            f"<td style='text-align:right'>{wrong}</td><td>{esc(c.status)}</td><td>{unmapped}</td></tr>"
        )
    read = "".join(f"<li>{esc(name)}: {esc(file)}</li>" for name, file in files.items())
    noted = "".join(f"<li>{esc(n)}</li>" for n in notes)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Mapping coverage</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}</style></head><body>"
        "<p><a href='index.html'>&larr; Data Docs</a></p><h1>Mapping coverage</h1>"
        "<p>For every coded field of the raw national files: the share of rows with a value whose code the "
        "shipped code list recognises, the rows with a value and unmapped, the rows whose code looks like "
        "another coding system, and the most frequent unmapped codes (codes and counts only). Limits are "
        "<code>mapping_coverage</code> in <code>configs/validation.yaml</code>; see docs/data-contract.md, "
        "&ldquo;Reading the coverage report&rdquo;.</p>"
        "<table><tr><th>source</th><th>field</th><th>code list</th><th>share mapped</th><th>rows</th>"
        "<th>unmapped rows</th><th>wrong-system rows</th><th>result</th><th>top unmapped codes</th></tr>"
        + "".join(rows)
        + "</table>"
        + (f"<h2>Files read</h2><ul>{read}</ul>" if read else "")
        + (f"<h2>Notes from the adapters</h2><ul>{noted}</ul>" if noted else "")
        + "</body></html>"
    )
