"""One rule for every text cell the worklists write: no text ever becomes a formula.

Person IDs, practice codes, caseload teams, neighbourhood and MDT names come from
extracts and settings that many systems feed, so any of them may hold text a
spreadsheet would run (``=HYPERLINK(...)``, ``@SUM(A1)``, ``-2+3``) or bytes
a terminal or an XLSX cannot take (an ANSI escape). Every text value written to
the XLSX (every sheet: titles, table headings and cells, the About sheet's
sections, the printed header and footer) and to the CSV goes through
:func:`inert_text`, one rule:

1. **Control characters are replaced, visibly, by U+FFFD** (``�``): the C0
   controls except tab, line feed and carriage return (NUL, ESC ...), DEL and
   the C1 controls (U+007F-U+009F), lone surrogates and the non-characters
   U+FFFE and U+FFFF. XLSX (XML 1.0) cannot hold most of them, and in a
   terminal they drive the screen; nothing is dropped silently.
   A carriage return (alone or before a line feed) becomes a line feed: a bare
   carriage return would start a new row in a CSV reader without being quoted
   (and XML reads it as a line feed anyway).
2. **Text that a spreadsheet could read as a formula gets a single quote (')
   in front**: text whose first character is ``=``, ``+``, ``-``, ``@``, tab or
   line break, or whose first character after leading white space is
   ``=``, ``+``, ``-`` or ``@`` (or their full-width forms ``＝ ＋ － ＠``).
   This is OWASP's CSV-injection rule (ASVS 1.2.10), a little wider.

The quote is part of the text in both files, so the XLSX and the CSV show the
same value (``'=1``). In the XLSX it is written into the cell's text rather
than set as a hidden ``quotePrefix`` style, because a hidden prefix is lost when
a user saves the workbook as CSV from Excel or Calc, and because text re-entered
from a cell that starts with a quote stays text. In addition every text cell of
the XLSX is stored as a string cell: never a formula (openpyxl turns text that
starts with ``=`` into one) nor an error value (``#N/A``); :func:`seal_workbook`
checks every cell of every sheet before the workbook is saved.

Numbers, dates and booleans are written as themselves: a negative risk stays a
number. Only text is changed, and only text that needs it; the history and the
manifest keep the values as they came (the manifest is JSON, whose encoder
escapes control characters and which no spreadsheet evaluates).
"""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
from openpyxl.cell.cell import Cell
from openpyxl.workbook import Workbook

REPLACEMENT = "\ufffd"
"""What an unwritable control character becomes (the Unicode replacement character)."""
QUOTE = "'"
"""Put in front of text a spreadsheet could read as a formula."""
FORMULA_STARTS: frozenset[str] = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
"""First characters that make a spreadsheet read a cell as a formula (tab and CR as OWASP lists them)."""
XLSX_MAX_TEXT = 32_767
"""Characters an XLSX cell holds; longer text is cut (openpyxl would cut it too, without a mark)."""

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def visible_text(text: str) -> str:
    """``text`` with every control character an XLSX or terminal cannot take replaced by U+FFFD.

    Carriage returns become line feeds (a line break stays a line break).
    """
    return _CONTROL.sub(REPLACEMENT, text.replace("\r\n", "\n").replace("\r", "\n"))


def needs_quote(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula (see the module docstring)."""
    if not text:
        return False
    if text[0] in FORMULA_STARTS:
        return True
    rest = text.lstrip()
    return bool(rest) and rest[0] in FORMULA_STARTS


def inert_text(text: str) -> str:
    """The rule: control characters replaced, and a quote in front of formula-like text.

    Applying it twice gives the same text as applying it once.

    Args:
        text: Any text bound for a cell of the XLSX or the CSV.

    Returns:
        The text as written.
    """
    text = visible_text(text)
    return QUOTE + text if needs_quote(text) else text


def cell_value(value: object) -> object:
    """A value as written to a cell: text made inert, missing values None, others unchanged.

    Numpy scalars become Python ones, so a number or a date is written as such.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return inert_text(value)
    kind = type(value)
    if kind is int or kind is bool:  # the common cases first: this runs for every cell
        return value
    if kind is float:
        return None if value != value else value
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return None
    if hasattr(value, "item") and not isinstance(value, date):
        value = value.item()
    if isinstance(value, bool | int | float | date):
        return value
    return inert_text(str(value))


def put(cell: Cell, value: object) -> Cell:
    """Write ``value`` into an XLSX cell by the rule; text is always a string cell.

    Args:
        cell: The cell (``sheet["A1"]`` or ``sheet.cell(row=r, column=c)``).
        value: Text, a number, a date, a boolean or None.

    Returns:
        The cell, for styling.
    """
    value = cell_value(value)
    if isinstance(value, str):
        value = value[:XLSX_MAX_TEXT]
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"  # openpyxl makes "=..." a formula and "#N/A" an error
    return cell


def seal_workbook(book: Workbook) -> None:
    """Hold every cell of every sheet to the rule before saving (a guard for cells set directly).

    Any formula or error cell becomes the inert text of its value, and any text
    not yet inert is rewritten; cells written with :func:`put` are left as they are.

    Args:
        book: The workbook about to be saved.
    """
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                value = cell.value
                if cell.data_type in ("f", "e") or (isinstance(value, str) and inert_text(value) != value):
                    put(cell, "" if value is None else str(value))


def inert_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` for the CSV: every text value and heading made inert, numbers unchanged.

    Args:
        frame: The rows to write.

    Returns:
        The copy.
    """
    out = frame.copy()
    out.columns = [inert_text(str(c)) for c in out.columns]
    for position in range(out.shape[1]):
        column = out.iloc[:, position]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
            continue
        out.isetitem(position, column.map(lambda v: inert_text(v) if isinstance(v, str) else v))
    return out


def header_footer_text(text: str) -> str:
    """Text for a printed header or footer: the rule, then '&' doubled (it starts a code there)."""
    return inert_text(text).replace("&", "&&")
