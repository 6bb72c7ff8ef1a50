"""One rule for every text cell the worklists write: no text ever becomes a formula.

Person IDs, practice codes, caseload teams, neighbourhood and MDT names come from
extracts and settings that many systems feed, so any of them may hold text a
spreadsheet would run (``=HYPERLINK(...)``, ``@SUM(A1)``, ``-2+3``) or bytes
a terminal or an XLSX cannot take (an ANSI escape). Every text value written to
the XLSX (every sheet: titles, table headings and cells, the About sheet's
sections, the printed header and footer) and to the CSV goes through
:func:`inert_text`, one rule:

1. **Control and invisible characters are replaced, visibly, by U+FFFD** (``�``):
   the C0 controls except tab, line feed and carriage return (NUL, ESC ...), DEL
   and the C1 controls (U+007F-U+009F), lone surrogates and the non-characters
   U+FFFE and U+FFFF, which XLSX (XML 1.0) cannot hold and which drive a
   terminal; and every character that shows nothing or reorders what is shown:
   the bidirectional marks, embeddings, overrides and isolates (U+200E, U+200F,
   U+061C, U+202A-U+202E, U+2066-U+2069), which make ``\u202e-High`` display as
   ``hgiH-``; the zero-width space, non-joiner and joiner, word joiner and
   invisible operators (U+200B-U+200D, U+2060-U+2064), the byte-order mark
   U+FEFF, the soft hyphen U+00AD, tag characters and every other format
   character (Unicode category Cf), the variation selectors and the Hangul
   fillers, with which two different values would look the same. Nothing is
   dropped silently. This includes the zero-width joiner inside an emoji
   sequence (a family emoji shows as its people with ``�`` between them) and
   the variation selector of an emoji: acceptable in a clinical list, where a
   value must read as what it is.
   A carriage return (alone or before a line feed) becomes a line feed: a bare
   carriage return would start a new row in a CSV reader without being quoted
   (and XML reads it as a line feed anyway). So do the line and paragraph
   separators U+2028 and U+2029: a line break stays a visible line break.
2. **Text that a spreadsheet could read as a formula gets a single quote (')
   in front**: text whose first character is ``=``, ``+``, ``-``, ``@``, tab or
   line break, or whose first character after leading white space and replaced
   characters (U+FFFD, so ``\u200b=1+1`` too) is ``=``, ``+``, ``-`` or ``@``
   (or their full-width forms ``＝ ＋ － ＠``). This is OWASP's CSV-injection
   rule (ASVS 1.2.10), a little wider: a tool that drops the replaced
   character, or a reader that trims white space, still finds no formula.

The quote is part of the text in both files, so the XLSX and the CSV show the
same value (``'=1``). In the XLSX it is written into the cell's text rather
than set as a hidden ``quotePrefix`` style, because a hidden prefix is lost when
a user saves the workbook as CSV from Excel or Calc, and because text re-entered
from a cell that starts with a quote stays text. In addition every text cell of
the XLSX is stored as a string cell: never a formula (openpyxl turns text that
starts with ``=`` into one) nor an error value (``#N/A``); :func:`seal_workbook`
checks every cell of every sheet before the workbook is saved.
The printed header and footer take the same rule, then have '&' doubled (it
starts a code there) and are cut, with an ellipsis, to Excel's 255 characters
per header or footer (:func:`header_footer_text`).

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

from riskstrat.text import INVISIBLE

REPLACEMENT = "\ufffd"
"""What an unwritable control character becomes (the Unicode replacement character)."""
QUOTE = "'"
"""Put in front of text a spreadsheet could read as a formula."""
FORMULA_STARTS: frozenset[str] = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
"""First characters that make a spreadsheet read a cell as a formula (tab and CR as OWASP lists them)."""
XLSX_MAX_TEXT = 32_767
"""Characters an XLSX cell holds; longer text is cut (openpyxl would cut it too, without a mark)."""

_CONTROL = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff{INVISIBLE}]")
_LINE_BREAK = re.compile("\r\n?|[\u2028\u2029]")
_BLANK_START = re.compile(f"[\\s{REPLACEMENT}{INVISIBLE}]*")
"""Leading white space, replaced and invisible characters: what a formula character may hide behind."""


def visible_text(text: str) -> str:
    """``text`` with every control or invisible character replaced by U+FFFD (see the module docstring).

    Carriage returns and the line and paragraph separators become line feeds
    (a line break stays a line break).
    """
    return _CONTROL.sub(REPLACEMENT, _LINE_BREAK.sub("\n", text))


def needs_quote(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula (see the module docstring)."""
    if not text:
        return False
    if text[0] in FORMULA_STARTS:
        return True
    rest = text[_BLANK_START.match(text).end() :]  # type: ignore[union-attr]  # always matches
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


HEADER_FOOTER_MAX = 255
"""Characters Excel allows in a printed header or footer, '&' codes included (UTF-16 units)."""
ELLIPSIS = "\u2026"
"""Ends a header or footer text that was cut to fit."""


def _units(char: str) -> int:
    """UTF-16 units ``char`` takes in a header or footer, once '&' is doubled."""
    return 2 if char == "&" or ord(char) > 0xFFFF else 1


def header_footer_text(text: str, beside: tuple[str, ...] = ()) -> str:
    """Text for a printed header or footer section: the rule, '&' doubled, cut to fit Excel's limit.

    '&' starts a code in a header or footer, so each is doubled (``&&``). Excel
    allows :data:`HEADER_FOOTER_MAX` characters in a whole header or footer,
    its ``&L``, ``&C`` and ``&R`` codes and the other sections included (longer
    ones are refused or "repaired" away by some tools), so text that would not
    fit is cut and ends with an ellipsis (``…``); the cut never splits an ``&&``
    pair (it is made before the doubling) nor a character outside the BMP.

    Args:
        text: Any text (an MDT name, a title) for one section.
        beside: The other sections of the same header or footer, as written
            (their length counts towards the limit).

    Returns:
        The section's text as written.
    """
    text = inert_text(text)
    room = HEADER_FOOTER_MAX - 2 * 3 - sum(len(part.encode("utf-16-le")) // 2 for part in beside)
    if sum(map(_units, text)) <= room:
        return text.replace("&", "&&")
    kept, used = [], 0
    for char in text:
        used += _units(char)
        if used > room - 1:  # one unit for the ellipsis
            break
        kept.append(char)
    return "".join(kept).replace("&", "&&") + ELLIPSIS
