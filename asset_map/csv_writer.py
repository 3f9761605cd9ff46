"""The one CSV writer: every CSV the app writes (exports, the assets table, gap reports, import duplicates, the
audit log) goes through it, so a cell is made safe for a spreadsheet in one place.

- Formula guard: a text cell that a spreadsheet would run as a formula (starting with = + - @, tab or CR) gets a
  leading apostrophe (OWASP's advice). Numbers are data, never formulas: a negative longitude keeps its minus sign.
- BOM: UTF-8 with a byte-order mark, so Excel reads the accents (left out where a caller's format has none).
- Attribution: the data's attribution and licence as leading ``#`` lines (Excel shows them as the first rows;
  pandas reads the file with ``comment='#'``, QGIS with "header lines to discard"), or a sidecar text.

Nothing here imports Flask or the database: ``registers/``, ``api/``, ``reports/`` and ``audit`` all sit above it.
"""

import csv
import re
from datetime import date, datetime
from decimal import Decimal

MEDIA_TYPE = "text/csv; charset=utf-8"
BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A number already written as text by our own code (fixed decimals): safe as it is, even when negative.
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def neutralise(value):
    """A cell as text, safe to open in a spreadsheet."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        value = ";".join(str(v) for v in value)
    elif isinstance(value, (datetime, date)):
        return value.isoformat()
    elif isinstance(value, (int, float, Decimal)):
        return repr(value) if isinstance(value, float) else str(value)
    value = str(value)
    if value.startswith(FORMULA_START):
        return "'" + value
    return value


def neutralise_number_text(value):
    """A cell that our code formatted as a number ("-1.5"): kept as it is when it is one, else guarded as text."""
    text = "" if value is None else str(value)
    return text if _NUMBER.match(text) else neutralise(text)


def comment_lines(attribution, licence=None):
    """The attribution and licence as ``#`` lines, each on one line whatever the settings hold."""
    lines = [f"# {line}" for line in attribution]
    if licence:
        lines.append(f"# Licence: {licence}")
    return [line.replace("\r", " ").replace("\n", " ") for line in lines]


def sidecar_text(title, attribution, licence):
    """The attribution as a text file to go beside a CSV written without ``#`` lines."""
    return "\n".join([title, "", *attribution, "", f"Licence: {licence}", ""])


class CsvWriter:
    """Rows to a text stream: the BOM and the ``#`` lines first (when asked), then the header and rows, every cell
    through :func:`neutralise`. ``numeric``: names of columns whose cells are numbers written as text by our own code,
    which keep a leading minus."""

    def __init__(self, out, *, bom=True, attribution=(), licence=None, lineterminator="\r\n"):
        self.out = out
        self.lineterminator = lineterminator
        self._csv = csv.writer(out, lineterminator=lineterminator)
        if bom:
            out.write(BOM)
        if attribution or licence:
            for line in comment_lines(attribution or (), licence):
                out.write(line + lineterminator)

    def header(self, names):
        self._csv.writerow([neutralise(n) for n in names])

    def row(self, values):
        self._csv.writerow([neutralise(v) for v in values])

    def rows(self, rows):
        self._csv.writerows([neutralise(v) for v in row] for row in rows)

    def columns(self, names, texts, numeric=()):
        """Write the header and the rows of a table given column by column (``texts[name]`` is a list)."""
        self.header(names)
        cols = [[neutralise_number_text(v) for v in texts[n]] if n in numeric else [neutralise(v) for v in texts[n]]
                for n in names]
        self._csv.writerows(zip(*cols))
