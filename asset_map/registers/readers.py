"""Read a register file (CSV, XLSX, GeoJSON, GeoPackage) into a DataFrame of strings.

Every cell is text exactly as written ("" when blank; nothing is guessed as a number or a date, and cells starting
with '=' stay text, never formulas); the column ``_row`` holds the row number a user sees in the source (the CSV
line or spreadsheet row, header = 1; the feature number in a GeoJSON or GeoPackage). Vector files give their point
as ``lon``/``lat`` strings in EPSG:4326.

Whatever the file holds, the result is a frame or an ``InputError`` naming the file and what is wrong with it.
"""

import csv
import io
import logging
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from asset_map.errors import InputError

log = logging.getLogger(__name__)

ROW = "_row"
CSV_SUFFIXES = (".csv", ".txt", ".tsv")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg")
SUFFIXES = CSV_SUFFIXES + XLSX_SUFFIXES + VECTOR_SUFFIXES
# Bytes never found in a text file Excel or a council system writes (NUL and most C0 controls).
_BINARY = bytes(range(0, 9)) + bytes([11, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31])
_BINARY_TABLE = bytes.maketrans(b"", b"")
# Ends the text handed to pyarrow, to tell a closed last row from a quote left open (a control character,
# so no register holds it as a whole row).
_SENTINEL = "\x01"
_BLANK = re.compile(r"^[ \t]+$")


def read_register(path, *, max_columns=1000):
    """The register at ``path`` as strings plus ``_row``; raises InputError for anything unreadable."""
    path = Path(path)
    if not path.is_file():
        msg = f"{path.name}: file not found"
        raise InputError(msg)
    if path.stat().st_size == 0:
        msg = f"{path.name}: the file is empty"
        raise InputError(msg)
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        frame = read_csv(path)
    elif suffix in XLSX_SUFFIXES:
        frame = read_xlsx(path)
    elif suffix == ".json" and _is_oruk(path):
        frame = read_oruk(path)
    elif suffix in VECTOR_SUFFIXES:
        frame = read_vector(path)
    else:
        msg = f"{path.name}: unsupported file type '{suffix or '(none)'}'; use one of {', '.join(SUFFIXES)}"
        raise InputError(msg)
    columns = len(frame.columns) - 1
    if columns > max_columns:
        msg = (f"{path.name}: {columns:,} columns, more than the {max_columns:,} a register may have "
               f"(ASSET_MAP_IMPORT_MAX_COLUMNS); is this the right file?")
        raise InputError(msg)
    if not len(frame):
        msg = f"{path.name}: the file has a header but no rows"
        raise InputError(msg)
    return frame


_GEOJSON = re.compile(rb'"type"\s*:\s*"(Feature|FeatureCollection)"')


def _is_oruk(path):
    """A .json file that is not GeoJSON: read as an Open Referral UK feed (a page, a list of services or one)."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    return not _GEOJSON.search(head)


def read_oruk(path):
    """An ORUK feed's services grouped into register rows (one per organisation), as text, ``_row`` numbered."""
    from asset_map.oruk import feed

    frame = feed.to_rows(feed.read_file(path), path.name).astype(str)
    frame[ROW] = np.arange(1, len(frame) + 1)
    return frame


def _decode(path, data):
    """Text of a CSV file: UTF-8 (with or without a BOM), else Windows-1252, as Excel writes them."""
    sample = data[:65536]
    if sample.translate(_BINARY_TABLE, _BINARY) != sample or data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        msg = (f"{path.name}: this is not a text CSV file (it holds binary data; if it is a spreadsheet, "
               f"save it as .xlsx or CSV)")
        raise InputError(msg)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as err:
            # cp1252 leaves five bytes undefined; a file holding them is neither encoding.
            msg = (f"{path.name}: the text is neither UTF-8 nor Windows-1252 (byte {data[err.start]:#04x} at "
                   f"offset {err.start:,}); save it from Excel as 'CSV UTF-8'")
            raise InputError(msg) from err


def _delimiter(text):
    head = text[:20000]
    try:
        return csv.Sniffer().sniff(head.split("\n", 1)[0] or head, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def read_csv(path):
    path = Path(path)
    text = _decode(path, path.read_bytes())
    if not text.strip():
        msg = f"{path.name}: the file is empty"
        raise InputError(msg)
    # Mixed line endings (\r\n, \n and a lone \r from old Mac exports) all end a row.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        sep = _delimiter(text)
        frame = _read_arrow(text, sep)
        if frame is None:
            frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                                na_filter=False, skip_blank_lines=True, engine="c")
    except pd.errors.EmptyDataError as err:
        msg = f"{path.name}: the file is empty"
        raise InputError(msg) from err
    except (pd.errors.ParserError, ValueError, csv.Error) as err:
        msg = f"{path.name}: not a readable CSV file ({_reason(err)})"
        raise InputError(msg) from err
    frame.columns = _headers(path, frame.columns)
    # Line numbers as a spreadsheet shows them; blank lines were skipped, so count from the text when needed.
    frame[ROW] = _line_numbers(text, len(frame), sep)
    return frame


def _read_arrow(text, sep):
    """The frame of a well-formed CSV text, read by pyarrow (several times faster than pandas' C parser), or None
    for a file that needs the C parser's leniency or its error messages: rows shorter than the header or holding
    only spaces, a header naming a column twice, a quote left open at the end. Every cell is read as text, exactly
    as pandas reads it with ``dtype=str``."""
    data = text.encode()
    # Threads cost more than they give on a small machine whose other core is busy with the rest of the import.
    read = pa_csv.ReadOptions(use_threads=False)
    parse = pa_csv.ParseOptions(delimiter=sep, newlines_in_values=True)
    try:
        with pa_csv.open_csv(io.BytesIO(data), read_options=read, parse_options=parse) as head:
            names = head.schema.names
        if len(set(names)) != len(names):
            return None
        # pyarrow takes a quote left open at the end as running to the end of the file, where the C parser says
        # "EOF inside string": a last row of sentinels comes back as a row only when every quote was closed.
        end = sep.join([_SENTINEL] * len(names))
        data = io.BytesIO(data + f"\n{end}\n".encode())
        # No type guessing: '007' stays '007' and a blank cell is "" (never null).
        convert = pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False)
        table = pa_csv.read_csv(data, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowException:
        return None
    if not table.num_rows or list(table.slice(table.num_rows - 1).to_pylist()[0].values()) != [_SENTINEL] * len(names):
        return None
    table = table.slice(0, table.num_rows - 1)
    # The C parser skips lines of spaces and tabs; with more than one column pyarrow refuses them as short rows.
    if len(names) == 1 and (_BLANK.fullmatch(names[0]) or pc.any(pc.match_substring_regex(table.column(0),
                                                                                           _BLANK.pattern)).as_py()):
        return None
    return table.to_pandas()


def _line_numbers(text, n, sep):
    """Row of each record as a spreadsheet shows it (header = 1; a quoted line break stays in its row, a blank
    line is a row of its own)."""
    body = text.rstrip("\n")
    if "\n\n" not in body and body.count("\n") == n:
        return np.arange(2, n + 2)
    rows = []
    for number, record in enumerate(csv.reader(io.StringIO(text), delimiter=sep), start=1):
        if number > 1 and any(cell.strip() for cell in record):
            rows.append(number)
        if len(rows) == n:
            break
    rows += list(range(len(rows) + 2, n + 2))
    return np.array(rows[:n])


def _headers(path, columns):
    """Stripped header names; blank ones are named by position so no column is lost."""
    out = []
    for i, name in enumerate(columns):
        name = str(name).strip()
        if not name or name.startswith("Unnamed: "):
            name = f"column_{i + 1}"
        out.append(name)
    if not any(c and not c.startswith("column_") for c in out):
        msg = f"{path.name}: the first row must be a header naming the columns"
        raise InputError(msg)
    return out


def read_xlsx(path, *, sheet=None):
    """The first (or named) sheet: cell values as saved by Excel, never formulas; a formula Excel never calculated
    (no saved value) is kept as its formula text and reported by the validator."""
    import openpyxl

    path = Path(path)
    if not zipfile.is_zipfile(path):
        msg = f"{path.name}: not an Excel .xlsx file (it is not a zip package)"
        raise InputError(msg)
    try:
        values = openpyxl.load_workbook(path, read_only=True, data_only=True)
        formulas = openpyxl.load_workbook(path, read_only=True, data_only=False)
    except Exception as err:  # noqa: BLE001 - openpyxl raises many types for broken packages
        msg = f"{path.name}: not a readable Excel file ({_reason(err)})"
        raise InputError(msg) from err
    try:
        ws = values[sheet] if sheet else values.worksheets[0]
        wf = formulas[sheet] if sheet else formulas.worksheets[0]
    except (KeyError, IndexError) as err:
        msg = f"{path.name}: no sheet {sheet!r}" if sheet else f"{path.name}: the workbook has no sheets"
        raise InputError(msg) from err
    rows, uncalculated = [], []
    for number, (value_row, formula_row) in enumerate(zip(ws.iter_rows(values_only=True),
                                                          wf.iter_rows(values_only=True)), start=1):
        rows.append([_cell(v, f) for v, f in zip(value_row, formula_row)])
        uncalculated += [(number, i) for i, (v, f) in enumerate(zip(value_row, formula_row))
                         if v is None and isinstance(f, str) and f.startswith("=")]
    values.close()
    formulas.close()
    numbered = [(i, r) for i, r in enumerate(rows, start=1) if any(c.strip() for c in r)]
    if not numbered:
        msg = f"{path.name}: the sheet is empty"
        raise InputError(msg)
    width = max(len(r) for _, r in numbered)
    (header_number, header), body = numbered[0], numbered[1:]
    header = _headers(path, header + [""] * (width - len(header)))
    cells = [r + [""] * (width - len(r)) for _, r in body]
    frame = pd.DataFrame(cells, columns=header, dtype=object) if cells else pd.DataFrame(columns=header)
    frame[ROW] = np.array([i for i, _ in body], dtype=np.int64)
    # Formulas Excel never calculated (a file written by a script) have no saved value: the importer reports them.
    frame.attrs["uncalculated"] = [(row, header[i], rows[row - 1][i]) for row, i in uncalculated
                                   if row > header_number]
    return frame


def _cell(value, formula):
    if value is None:
        if isinstance(formula, str) and formula.startswith("="):
            return formula
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        text = value.isoformat()
        return text[:10] if text.endswith("T00:00:00") else text
    return str(value).strip()


def read_vector(path):
    """A GeoJSON or GeoPackage layer: attributes as text, the point as lon/lat in EPSG:4326 (a polygon gives a
    point inside it)."""
    import pyogrio

    path = Path(path)
    try:
        gdf = pyogrio.read_dataframe(path)
    except Exception as err:  # noqa: BLE001 - GDAL errors come in many types
        msg = f"{path.name}: not a readable GeoJSON or GeoPackage file ({_reason(err)})"
        raise InputError(msg) from err
    if gdf.crs is not None and gdf.crs.to_epsg() != 4326:
        gdf = gdf.to_crs(4326)
    frame = pd.DataFrame({str(c): _text(gdf[c]) for c in gdf.columns if c != "geometry"})
    if "geometry" in gdf and gdf.geometry.notna().any():
        points = gdf.geometry.where(gdf.geometry.geom_type == "Point", gdf.geometry.representative_point())
        has = points.notna() & ~points.is_empty
        frame["lon"] = np.where(has, points.x.round(7).astype(str), "")
        frame["lat"] = np.where(has, points.y.round(7).astype(str), "")
    frame[ROW] = np.arange(1, len(frame) + 1)
    return frame


def _text(series):
    out = series.astype(object).where(series.notna(), "")
    return out.map(lambda v: v if isinstance(v, str) else (str(int(v)) if isinstance(v, float) and v.is_integer()
                                                            else str(v))).str.strip()


def _reason(err):
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:200]
