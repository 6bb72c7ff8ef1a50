"""`riskstrat decisions import`: the command imports returned lists all or none, and says why it refuses one."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from typer.testing import CliRunner

from riskstrat.catalog import output_catalog
from riskstrat.io import file_sha256
from riskstrat.pipelines.cli import app
from riskstrat.pipelines.config import write_relocated_config
from riskstrat.pipelines.decisions import read_decision_history
from riskstrat.worklists.decisions import DECISION_HEADER, DECISIONS, stamp_workbook

WEEK = date(2026, 1, 5)
runner = CliRunner()


def publish(out: Path) -> pd.DataFrame:
    """A published week with one MDT's three-person list (history rows and manifest, as the export writes)."""
    folder = output_catalog(out).week(WEEK)
    folder.mkdir(parents=True)
    listed = pd.DataFrame(
        {
            "week": WEEK.isoformat(),
            "mdt": "Riverside",
            "person_id": ["P1", "P2", "P3"],
            "practice_code": "A1",
            "rank": [1, 2, 3],
            "probability": [0.61, 0.552, 0.40],
            "risk_band": "High",
        }
    )
    listed.to_parquet(folder / "history.parquet", index=False)
    manifest = {"files": {"history.parquet": file_sha256(folder / "history.parquet")}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return listed


def returned_list(path: Path, listed: pd.DataFrame, decisions: list[str | None]) -> Path:
    """The list as the MDT returns it: headings in row 5, decisions filled in, stamped as issued."""
    book = Workbook()
    sheet = book.active
    sheet.append(["Riverside: people to discuss"])
    for _ in range(3):
        sheet.append([])
    sheet.append(["Rank", "Person ID", "Risk (%)", DECISION_HEADER])
    rows = pd.DataFrame(
        {
            "Rank": listed["rank"],
            "Person ID": listed["person_id"],
            "Risk (%)": (listed["probability"] * 100).round(1),
        }
    )
    for (_, row), decision in zip(rows.iterrows(), decisions, strict=True):
        sheet.append([int(row["Rank"]), row["Person ID"], float(row["Risk (%)"]), decision])
    stamp_workbook(book, mdt="Riverside", week=WEEK, rows=rows)
    book.save(path)
    return path


def test_the_command_imports_every_file_or_none(tmp_path):
    out = tmp_path / "out"
    config = write_relocated_config(tmp_path / "configs", out)
    listed = publish(out)
    good = returned_list(
        tmp_path / "riverside.xlsx", listed, [DECISIONS["declined"], None, "Not appropriate now"]
    )
    bad = returned_list(tmp_path / "riverside-bad.xlsx", listed, ["Declined", "see notes", None])

    refused = runner.invoke(app, ["--config-dir", str(config), "decisions", "import", str(good), str(bad)])
    assert refused.exit_code == 1
    assert (
        "error: riverside-bad.xlsx (MDT 'Riverside', week 2026-01-05): 1 row with an MDT decision"
        in refused.output
    )
    assert "e.g. person ID P2" in refused.output and "see notes" not in refused.output
    assert "hint: Pick from the drop-down" in refused.output
    assert read_decision_history(out).empty  # the good file was not recorded either

    done = runner.invoke(app, ["--config-dir", str(config), "decisions", "import", str(good)])
    assert done.exit_code == 0, done.output
    assert (
        "riverside.xlsx: Riverside, week 2026-01-05: 2 of 3 people with a decision, 2 new or changed"
        in done.output
    )
    history = read_decision_history(out)
    assert dict(zip(history["person_id"], history["decision"], strict=True)) == {
        "P1": "declined",
        "P3": "not_appropriate",
    }
    again = runner.invoke(app, ["--config-dir", str(config), "decisions", "import", str(good)])
    assert "0 new or changed" in again.output


def test_a_returned_list_with_no_decision_is_a_warning_not_a_silent_success(tmp_path):
    out = tmp_path / "out"
    config = write_relocated_config(tmp_path / "configs", out)
    blank = returned_list(tmp_path / "riverside.xlsx", publish(out), [None, None, None])
    result = runner.invoke(app, ["--config-dir", str(config), "decisions", "import", str(blank)])
    assert result.exit_code == 0, result.output
    assert (
        "Warning: riverside.xlsx: Riverside, week 2026-01-05: no MDT decision recorded on any of its 3 "
        "people, so nothing was imported" in " ".join(result.output.split())
    )
    assert read_decision_history(out).empty


def test_decisions_help_lists_import():
    result = runner.invoke(app, ["decisions", "--help"])
    assert result.exit_code == 0 and "import" in result.output


def test_the_board_summary_joins_the_published_lists_their_groups_and_the_decisions(tmp_path):
    from riskstrat.evaluation.disclosure import check_disclosed
    from riskstrat.pipelines.decisions import board_decisions, import_decisions

    out = tmp_path / "out"
    listed = publish(out)
    catalog = output_catalog(out)
    manifest_path = catalog.week(WEEK) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest.update(
        {
            "extract_snapshot_hash": "snap",
            "data_date": "2026-01-02",
            "mdts": {"Riverside": {"outcome": "emergency_admission"}},
        }
    )
    manifest_path.write_text(json.dumps(manifest))
    assert board_decisions(out) is None  # nothing came back yet
    cache = catalog.feature_file("snap", date(2026, 1, 2), "k")
    cache.parent.mkdir(parents=True)
    pd.DataFrame(
        {"person_id": ["P1", "P2", "P3"], "imd_quintile": [1.0, 1.0, 5.0], "ethnic_group": "White"}
    ).to_parquet(cache)
    import_decisions(
        out, [returned_list(tmp_path / "r.xlsx", listed, ["Declined", None, "Not appropriate now"])]
    )
    summary = board_decisions(out)
    check_disclosed(summary)
    assert summary["weeks"] == ["2026-01-05"] and summary["mdts"] == ["Riverside"]
    assert summary["n_listed"] == "*" and summary["n_discussed"] == "*"  # 3 and 2: suppressed
    assert [g["group"] for g in summary["groupings"][0]["groups"]][:5] == ["1", "2", "3", "4", "5"]
    # A model's report covers the lists its outcome ranked.
    assert board_decisions(out, "emergency_admission") == summary
    assert board_decisions(out, "frequent_attendance") is None
