"""Register files uploaded in the browser: checked (kind, size, zip and XLSX bombs, readable by the importer's own
readers), stored under ``<VAR_DIR>/uploads`` with a name we make (never the user's), never executed or served back;
and the column mapping a form proposes and saves for them (the same Mapping, and YAML, the CLI uses).
"""

import hashlib
import json
import zipfile
from pathlib import Path

import yaml
from sqlalchemy import text

from asset_map.errors import InputError, NotFound
from asset_map.filenames import inside, safe_filename
from asset_map.registers.mapping import Mapping, load_mapping, shipped_mapping
from asset_map.registers.readers import ROW, SUFFIXES, XLSX_SUFFIXES, read_register
from asset_map.registers.schema import FIELDS, field_for_header

# A zip (XLSX) whose members would unpack to more than this many times its size, or to more than this many bytes,
# is refused before any reader opens it: a few kilobytes can unpack to gigabytes.
MAX_ZIP_RATIO = 100
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
_MAGIC = {".xlsx": b"PK\x03\x04", ".xlsm": b"PK\x03\x04", ".gpkg": b"SQLite format 3\x00"}
SAMPLES = 3


def folder(settings):
    path = Path(settings["VAR_DIR"]) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def path_of(settings, stored_name):
    return inside(folder(settings), stored_name)


def check_register_name(name):
    name = (name or "").strip()
    if not name or len(name) > 128 or not all(c.isalnum() or c in "-_. " for c in name):
        msg = f"Register name {name[:60]!r}: use up to 128 letters, digits, '-', '_', '.' or spaces."
        raise InputError(msg)
    if name.startswith("manual-"):
        raise InputError("Register names starting with 'manual-' hold assets made by hand; choose another name.")
    return name


def save(engine, settings, *, register, filename, stream, actor, max_bytes):
    """Store an upload and check it can be read; returns its id. Anything wrong is an InputError naming the file,
    and nothing is kept."""
    register = check_register_name(register)
    original = safe_filename(filename, default="upload")
    suffix = Path(original).suffix.lower()
    if suffix not in SUFFIXES:
        msg = (f"{original}: a file of the wrong kind ({suffix or 'no extension'}); upload a register as "
               f"{', '.join(SUFFIXES)}")
        raise InputError(msg)
    digest = hashlib.sha256()
    tmp = folder(settings) / f".incoming-{hashlib.sha256(original.encode()).hexdigest()[:8]}-{id(stream)}"
    size = 0
    try:
        with open(tmp, "wb") as out:
            while chunk := stream.read(1024 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    msg = f"{original}: larger than the {max_bytes // (1024 * 1024)} MB limit (ASSET_MAP_MAX_UPLOAD_MB)"
                    raise InputError(msg)
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InputError(f"{original}: the file is empty")
        _check_kind(tmp, original, suffix)
        # The importer's own readers decide whether it can be read; their message names the file and the problem.
        staged = tmp.with_name(tmp.name + suffix)
        tmp.rename(staged)
        tmp = staged
        raw = read_register(tmp, max_columns=int(settings.get("IMPORT_MAX_COLUMNS", 1000)))
        with engine.begin() as conn:
            upload_id = conn.execute(text(
                "INSERT INTO register_uploads (register, original_name, stored_name, size, sha256, actor) "
                "VALUES (:r, :o, '', :s, :h, :a) RETURNING id"),
                {"r": register, "o": original, "s": size, "h": digest.hexdigest(), "a": actor}).scalar_one()
            stored = f"{upload_id:08d}-{digest.hexdigest()[:16]}{suffix}"
            conn.execute(text("UPDATE register_uploads SET stored_name = :n WHERE id = :i"),
                         {"n": stored, "i": upload_id})
            from asset_map import audit

            audit.record(conn, actor=actor, action="upload", target=register, rows=len(raw),
                         details={"file": original, "bytes": size, "sha256": digest.hexdigest(), "upload": upload_id})
            tmp.rename(path_of(settings, stored))
        return upload_id
    finally:
        if tmp.exists():
            tmp.unlink()


def _check_kind(path, original, suffix):
    with open(path, "rb") as f:
        head = f.read(16)
    magic = _MAGIC.get(suffix)
    if magic and not head.startswith(magic):
        raise InputError(f"{original}: a file of the wrong kind: its content is not {suffix[1:].upper()}")
    if suffix in XLSX_SUFFIXES:
        _check_zip(path, original)
    if suffix in (".geojson", ".json") and not head.lstrip()[:1] in (b"{", b"\xef"):
        raise InputError(f"{original}: a file of the wrong kind: a GeoJSON file starts with '{{'")


def _check_zip(path, original):
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except zipfile.BadZipFile as err:
        raise InputError(f"{original}: a damaged or wrong kind of file (not a valid XLSX package)") from err
    unpacked = sum(i.file_size for i in infos)
    packed = max(1, sum(i.compress_size for i in infos))
    if unpacked > MAX_UNPACKED_BYTES or unpacked / packed > MAX_ZIP_RATIO:
        msg = (f"{original}: refused: it would unpack to {unpacked / 1e6:,.0f} MB from {packed / 1e6:,.1f} MB "
               f"(a 'zip bomb'); save the sheet again from Excel, or as CSV")
        raise InputError(msg)


def get(engine, upload_id):
    with engine.connect() as conn:
        row = conn.execute(text("SELECT id, register, original_name, stored_name, size, sha256, mapping, at, actor "
                                "FROM register_uploads WHERE id = :i"), {"i": int(upload_id)}).mappings().first()
    if row is None:
        raise NotFound(f"There is no upload {upload_id}.")
    return dict(row)


def read(settings, upload):
    return read_register(path_of(settings, upload["stored_name"]),
                         max_columns=int(settings.get("IMPORT_MAX_COLUMNS", 1000)))


def columns(raw):
    """[(column, [sample values])] of the file: the first few distinct non-blank values of each column."""
    out = []
    for col in raw.columns:
        if col == ROW:
            continue
        values = raw[col].head(500)
        samples = list(dict.fromkeys(v for v in values if isinstance(v, str) and v.strip()))[:SAMPLES]
        out.append((col, [s[:60] for s in samples]))
    return out


def propose(engine, upload, raw):
    """A mapping for the upload: the one saved with it, else its register's saved mapping when the file has its
    columns, else the shipped mapping for its file name, else columns named like the fields. Returns (Mapping,
    where it came from)."""
    if upload.get("mapping"):
        return Mapping.from_dict(mapping_keys(upload["mapping"]), source="this upload"), "saved with this upload"
    with engine.connect() as conn:
        saved = conn.execute(text("SELECT mapping FROM registers WHERE name = :r"),
                             {"r": upload["register"]}).scalar()
    headers = set(raw.columns)
    if saved:
        mapping = Mapping.from_dict(mapping_keys(saved), source=f"register {upload['register']}")
        needed = {c for cols in mapping.columns.values() for c in cols} | {r["column"] for r in mapping.derive}
        if needed <= headers:
            return mapping, f"the saved mapping of register {upload['register']}"
    shipped = shipped_mapping(upload["original_name"])
    if shipped:
        return load_mapping(shipped), f"layers/mappings/{shipped.name} (for files named {upload['original_name']})"
    return Mapping(source="columns named like the fields"), "columns named like the fields"


def mapping_keys(data):
    """A saved mapping's keys that Mapping.from_dict reads (a saved one also records its 'source')."""
    return {k: v for k, v in (data or {}).items() if k in ("columns", "derive", "set", "defaults")}


def assignment(mapping, raw):
    """{column: field} as the form shows it: the mapping's columns, then columns named like a field."""
    out = {}
    for name, cols in mapping.columns.items():
        for col in cols:
            out.setdefault(col, name)
    taken = set(out.values())
    for col in raw.columns:
        name = field_for_header(col) if col != ROW else None
        if name and col not in out and name not in taken:
            out[col] = name
            taken.add(name)
    return out


def from_form(form, raw, *, source):
    """The Mapping the form describes: each column's field (columns choosing one field are joined in file order),
    ``set`` and ``defaults`` as "field: value" lines, ``derive`` as YAML. InputError for anything wrong, including a
    mapping that gives ``name`` nothing."""
    columns = {}
    for i, col in enumerate(c for c in raw.columns if c != ROW):
        chosen = (form.get(f"col-{i}") or "").strip()
        if chosen:
            if chosen not in FIELDS:
                raise InputError(f"Column {col!r}: {chosen!r} is not an asset field.")
            columns.setdefault(chosen, []).append(col)
    data = {"columns": columns, "set": _pairs(form.get("set", ""), "Set for every row"),
            "defaults": _pairs(form.get("defaults", ""), "Defaults")}
    derive_text = (form.get("derive") or "").strip()
    if derive_text:
        try:
            derive = yaml.safe_load(derive_text)
        except yaml.YAMLError as err:
            raise InputError(f"Derived values: not valid YAML ({str(err).splitlines()[0]}).") from err
        if not isinstance(derive, list):
            raise InputError("Derived values: expected a list of rules (- column: ... values: ...).")
        data["derive"] = derive
    mapping = Mapping.from_dict(data, source=source)
    mapping.apply(raw.head(5), file_name=source)  # a derive rule naming a missing column is reported here
    gives_name = "name" in mapping.columns or "name" in mapping.set or "name" in mapping.defaults or any(
        "name" in v for r in mapping.derive for v in [*r["values"].values(), r["when_filled"]])
    if not gives_name:
        raise InputError("The mapping gives the field 'name' nothing: choose the column that holds each asset's "
                         "name (every asset needs one).")
    return mapping


def _pairs(textarea, what):
    out = {}
    for n, line in enumerate(str(textarea).splitlines(), start=1):
        if not line.strip():
            continue
        if ":" not in line:
            raise InputError(f"{what}, line {n}: write field: value (for example status: open).")
        name, value = line.split(":", 1)
        out[name.strip()] = value.strip()
    return out


def save_mapping(engine, upload_id, mapping, *, actor):
    from asset_map import audit

    with engine.begin() as conn:
        conn.execute(text("UPDATE register_uploads SET mapping = CAST(:m AS jsonb) WHERE id = :i"),
                     {"m": json.dumps(mapping.as_dict()), "i": upload_id})
        audit.record(conn, actor=actor, action="mapping-save", target=f"upload:{upload_id}",
                     details={"fields": sorted(mapping.columns), "set": mapping.set, "defaults": mapping.defaults})


def as_yaml(mapping_dict, *, register=None):
    """A saved mapping as the YAML file the CLI reads (``asset-map import FILE --mapping this.yaml``)."""
    data = mapping_keys(mapping_dict)
    head = f"# Mapping of register {register}, as saved by asset-map.\n" if register else ""
    return head + yaml.safe_dump({k: v for k, v in data.items() if v}, sort_keys=False, allow_unicode=True)
