"""Data Docs: one static HTML page per validated extract, and an index of past validations.

Great Expectations' own Data Docs load Bootstrap, jQuery, bootstrap-table, Vega and Font
Awesome from CDNs and draw their index with JavaScript, so offline (where NHS analysts
often work) the index is blank; and the site is rebuilt from the run's in-memory results,
so each validation overwrote the last. The pages here are plain HTML and CSS, written
from the same summary as the validation JSON (:meth:`ValidationReport.to_dict`): no
script, no external file, readable and printable offline.

Layout under ``<output_dir>/data_docs/``::

    index.html                     every validation kept, newest first (rebuilt each run)
    <extract hash, 16 hex>/        one folder per validated extract, replaced only when
        index.html                 the same extract is validated again
        mapping_coverage.html      when the extract came from ``riskstrat adapt``
        summary.json               what the index lists (no rows, no examples)

The pages hold counts only, no examples: Data Docs are shared more widely than the run's own
report, so the pseudonymised IDs and codes of failing rows stay in ``validation/<hash>.json``
and the error message (the pages say where to find them).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from riskstrat.ingest.social_care import local_authority_name, quarter_label
from riskstrat.io import atomic_directory, atomic_path

COVERAGE_PAGE = "mapping_coverage.html"
"""The "Mapping coverage" page, beside a validation's page and linked from it."""

SUMMARY_FILE = "summary.json"
"""What the index of past validations reads from each validation's folder."""

FOLDER_CHARS = 16
"""Characters of the extract's hash that name its folder (as the feature cache does)."""

STYLE = """
body { font-family: Arial, "Liberation Sans", "DejaVu Sans", sans-serif; color: #212b32; margin: 0 auto;
  max-width: 1100px; padding: 0 20px 40px; line-height: 1.4; font-size: 14px; }
h1 { color: #005eb8; border-bottom: 3px solid #005eb8; padding-bottom: 4px; }
h2 { color: #005eb8; margin-top: 28px; border-bottom: 1px solid #d8dde0; }
table { border-collapse: collapse; margin: 6px 0 14px; font-size: 13px; }
th, td { border: 1px solid #d8dde0; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f0f4f5; }
td.num { text-align: right; }
tr { break-inside: avoid; }
.passed { color: #007f3b; font-weight: bold; }
.critical { color: #d5281b; font-weight: bold; }
.warning { color: #b35c00; font-weight: bold; }
.note { color: #4c6272; font-size: 13px; }
@page { size: A4; margin: 12mm; }
@media print { body { max-width: none; padding: 0; font-size: 9.5pt; } table { font-size: 8pt; } }
"""


def docs_folder(docs_dir: Path, snapshot_hash: str) -> Path:
    """The folder of one validated extract's Data Docs."""
    return Path(docs_dir) / snapshot_hash[:FOLDER_CHARS]


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _verdict(summary: dict[str, Any]) -> str:
    if not summary["passed"]:
        return f'<span class="critical">failed: {summary["n_critical_failures"]} critical</span>'
    if summary["n_warnings"]:
        return f'<span class="warning">passed with {summary["n_warnings"]} warnings</span>'
    return '<span class="passed">passed</span>'


def _result_cell(result: dict[str, Any]) -> str:
    if result["passed"]:
        return '<td class="passed">passed</td>'
    return f'<td class="{html.escape(result["severity"])}">{html.escape(result["severity"])}</td>'


def social_care_returns_html(returns: dict[str, Any]) -> str:
    """The "Social care returns" section: per local authority, the latest CLD quarter received and the missing ones."""
    esc = html.escape
    missing: dict[str, list[str]] = {}
    for m in returns["missing"]:
        missing.setdefault(m["la_code"], []).append(quarter_label(dt.date.fromisoformat(m["quarter_start"])))
    rows = [
        f"<tr><td>{esc(local_authority_name(la))}</td>"
        f"<td>{esc(quarter_label(dt.date.fromisoformat(latest)) if latest else 'none')}</td>"
        f"<td>{esc(', '.join(missing.get(la, [])) or '-')}</td></tr>"
        for la, latest in returns["latest"].items()
    ]
    return (
        "<h2>Social care returns</h2>"
        f"<p>{esc(returns['headline'])}. A quarter's Client Level Data return is due 60 days after the quarter "
        "ends; a missing one is a warning. Returns cover the 12 months to their quarter's end, so only the "
        "latest return due decides whether its people's social care is known (never read as none when not).</p>"
        "<table><tr><th>Local authority</th><th>Latest quarter received</th><th>Missing quarters</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def validation_page(summary: dict[str, Any], validated_at: str, has_coverage: bool) -> str:
    """The page of one validation: verdict, rows per table and every check, failures first.

    Args:
        summary: The validation's JSON summary (``ValidationReport.to_dict()``).
        validated_at: When it ran (UTC, as shown).
        has_coverage: Link the "Mapping coverage" page beside it.
    """
    esc = html.escape
    results = summary["results"]
    tables = list(dict.fromkeys(r["table"] for r in results))
    parts = [
        "<p><a href='../index.html'>&larr; All validations</a></p>",
        "<h1>Data Docs: extract validation</h1>",
        f"<p>Extract <code>{esc(summary['snapshot_hash'][:FOLDER_CHARS])}</code> (no event after "
        f"{esc(summary['extract_date'])}), validated {esc(validated_at)}: {_verdict(summary)}. "
        f"{summary['n_checks']} checks; {summary['n_critical_failures']} critical failures stop the run, "
        f"{summary['n_warnings']} warnings are reported while it goes on.</p>",
    ]
    if has_coverage:
        parts.append(
            f"<p><a href='{COVERAGE_PAGE}'><b>Mapping coverage</b></a>: how much of each coded field of the "
            "raw national files the shipped code lists recognised, with the most frequent unmapped codes.</p>"
        )
    if summary.get("social_care_returns"):
        parts.append(social_care_returns_html(summary["social_care_returns"]))
    parts.append(
        "<h2>Tables</h2><table><tr><th>Table</th><th>Rows read</th><th>Checks</th><th>Failed</th></tr>"
    )
    for table in tables:
        mine = [r for r in results if r["table"] == table]
        failed = sum(not r["passed"] for r in mine)
        rows = summary["row_counts"].get(table)
        parts.append(
            f"<tr><td><a href='#{esc(table)}'>{esc(table)}</a></td>"
            f"<td class='num'>{'-' if rows is None else f'{rows:,}'}</td><td class='num'>{len(mine)}</td>"
            f"<td class='num'>{failed}</td></tr>"
        )
    parts.append("</table>")
    for table in tables:
        mine = sorted((r for r in results if r["table"] == table), key=lambda r: r["passed"])
        parts.append(
            f"<h2 id='{esc(table)}'>{esc(table)}</h2><table><tr><th>Column</th><th>Check</th><th>Expected</th>"
            "<th>Rows failing / checked</th><th>Result</th></tr>"
        )
        for r in mine:
            counted = f"{r['n_rows']:,} / {r['n_checked']:,}" if r["n_checked"] else "-"
            parts.append(
                f"<tr><td>{esc(r['column'] or '(table)')}</td><td>{esc(r['kind'].replace('_', ' '))}</td>"
                f"<td>{esc(r['expected'])}</td><td class='num'>{counted}</td>{_result_cell(r)}</tr>"
            )
        parts.append("</table>")
    parts.append(
        "<p class='note'>Written by riskstrat from the validation's results (the same figures as "
        "<code>validation/&lt;hash&gt;.json</code>, which also holds up to five pseudonymised examples of "
        "each failing check); no script or file from the internet is needed.</p>"
    )
    return _page(f"Data Docs: extract {summary['snapshot_hash'][:FOLDER_CHARS]}", "\n".join(parts))


def _kept_validations(docs_dir: Path) -> list[dict[str, Any]]:
    kept = []
    for path in sorted(Path(docs_dir).glob(f"*/{SUMMARY_FILE}")):
        if path.parent.name.startswith("."):  # a staging folder being written
            continue
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a folder being replaced, or damaged: left out of the index, not fatal
        entry["folder"] = path.parent.name
        kept.append(entry)
    return sorted(kept, key=lambda e: e.get("validated_at", ""), reverse=True)


def index_page(validations: list[dict[str, Any]]) -> str:
    """The index of past validations, newest first, each linking to its page."""
    esc = html.escape
    rows = [
        f"<tr><td>{esc(v['validated_at'])}</td><td><a href='{esc(v['folder'])}/index.html'><code>"
        f"{esc(v['folder'])}</code></a></td><td>{esc(v['extract_date'])}</td><td>{_verdict(v)}</td>"
        f"<td class='num'>{v['n_checks']}</td><td class='num'>{sum(v['row_counts'].values()):,}</td></tr>"
        for v in validations
    ]
    body = (
        "<h1>Data Docs: validations of extracts</h1>"
        "<p>Every extract the gate has validated, newest first; each keeps its own page. An extract "
        "validated again replaces only its own page.</p>"
        "<table><tr><th>Validated (UTC)</th><th>Extract</th><th>No event after</th><th>Result</th>"
        "<th>Checks</th><th>Rows read</th></tr>" + "".join(rows) + "</table>"
    )
    return _page("Data Docs: validations", body)


def build_data_docs(summary: dict[str, Any], docs_dir: Path, coverage_html: str | None = None) -> Path:
    """Write this validation's Data Docs folder (atomically) and rebuild the index of past ones.

    Args:
        summary: The validation's JSON summary (``ValidationReport.to_dict()``).
        docs_dir: The Data Docs folder, e.g. ``<output_dir>/data_docs``.
        coverage_html: The "Mapping coverage" page, when the extract has coverage.

    Returns:
        This validation's page (``<docs_dir>/<hash>/index.html``).
    """
    docs_dir = Path(docs_dir).resolve()
    docs_dir.mkdir(parents=True, exist_ok=True)
    folder = docs_folder(docs_dir, summary["snapshot_hash"])
    validated_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    entry = {
        key: summary[key]
        for key in (
            "snapshot_hash",
            "extract_date",
            "passed",
            "n_checks",
            "n_critical_failures",
            "n_warnings",
        )
    }
    entry.update(validated_at=validated_at, row_counts=dict(summary["row_counts"]))
    with atomic_directory(folder) as staging:
        (staging / "index.html").write_text(
            validation_page(summary, validated_at, coverage_html is not None), encoding="utf-8"
        )
        if coverage_html is not None:
            (staging / COVERAGE_PAGE).write_text(coverage_html, encoding="utf-8")
        (staging / SUMMARY_FILE).write_text(json.dumps(entry, indent=1), encoding="utf-8")
    with atomic_path(docs_dir / "index.html") as tmp:
        Path(tmp).write_text(index_page(_kept_validations(docs_dir)), encoding="utf-8")
    return folder / "index.html"
