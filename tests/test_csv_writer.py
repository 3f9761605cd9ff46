"""The one CSV writer: formula guard, BOM and attribution lines, and every CSV the app writes goes through it."""

import csv
import io
import re
from decimal import Decimal

from asset_map import csv_writer
from asset_map.config import PROJECT_DIR


def _write(**kwargs):
    out = io.StringIO()
    writer = csv_writer.CsvWriter(out, **kwargs)
    writer.header(["name", "lon"])
    writer.row(["=HYPERLINK(\"http://evil\")", -2.1])
    writer.row(["Café", Decimal("-1.700000")])
    return out.getvalue()


def test_bom_attribution_and_guarded_cells():
    text = _write(attribution=["Contains OS data", "Line\nbreak"], licence="OGL v3")
    lines = text.split("\r\n")
    assert lines[:4] == ["\ufeff# Contains OS data", "# Line break", "# Licence: OGL v3", "name,lon"]
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), strict=True))
    assert rows[4] == ["'=HYPERLINK(\"http://evil\")", "-2.1"]
    assert rows[5] == ["Café", "-1.700000"]


def test_without_bom_or_comments_the_header_comes_first():
    assert _write(bom=False).startswith("name,lon\r\n")


def test_columns_keep_our_numbers_and_guard_text():
    out = io.StringIO()
    csv_writer.CsvWriter(out, bom=False, lineterminator="\n").columns(
        ["code", "score", "name"], {"code": ["A", "B"], "score": ["-1.250", "=1+1"], "name": ["-x", "Library"]},
        numeric={"score"})
    assert out.getvalue() == "code,score,name\nA,-1.250,'-x\nB,'=1+1,Library\n"


_OWN_CSV = re.compile(r"csv\.writer\(|\\ufeff|pd\.DataFrame\([^)]*\)\.to_csv\(|\bcsv\.DictWriter")
# The synthetic county writes input files in its sources' own layouts (for the importer to read), not CSVs for
# people; benchmarks and the vendoring script are tools; store/ feeds PostgreSQL's COPY, which is no spreadsheet.
_NOT_OUTPUT = {"csv_writer.py", "synth.py"}


def test_no_other_module_writes_csv_itself():
    """Every CSV goes through csv_writer: no module builds its own csv.writer, DictWriter or BOM."""
    offenders = [str(p.relative_to(PROJECT_DIR)) for p in sorted((PROJECT_DIR / "asset_map").rglob("*.py"))
                 if p.name not in _NOT_OUTPUT and not {"tools", "store"} & set(p.parts)
                 and _OWN_CSV.search(p.read_text("utf-8"))]
    assert offenders == []
    assert _OWN_CSV.search('writer = csv.writer(out, lineterminator="\\r\\n")')  # the check can fail
