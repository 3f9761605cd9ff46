"""Column mappings: which source columns fill which asset fields, and constant or derived values.

A mapping is YAML (or the same built from CLI flags ``--map field=column`` and ``--set field=value``)::

    columns:                      # field: column, or a list of columns joined with ", "
      name: Library name
      address: [Address 1, Address 2, Address 3]
    derive:                       # values from a column's values, first matching rule wins per field
      - column: Type of library
        values:
          CRL: {tier: association, category: community_run_library}
          LAL: {tier: organisation, category: library}
      - column: Year closed
        when_filled: {status: closed}
    set: {visibility: public}     # constants for every row (override everything)
    defaults: {status: open}      # fill what is still blank

Columns already named like a field (``name``, ``postcode``, ``lon``, ...) need no mapping. Precedence, highest
first: ``set``, ``derive``, ``columns``, columns named like a field, ``defaults``. Every source column not mapped to
a field is kept in ``properties`` (JSON), so nothing in the file is lost.
"""

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from asset_map.config import PROJECT_DIR
from asset_map.errors import InputError
from asset_map.registers.readers import ROW
from asset_map.registers.schema import FIELDS, field_for_header, normalise_word

MAPPINGS_DIR = PROJECT_DIR / "layers" / "register_mappings"
_KEYS = ("columns", "derive", "set", "defaults", "register", "description", "files")


@dataclass
class Mapping:
    columns: dict = field(default_factory=dict)      # field -> [columns]
    derive: list = field(default_factory=list)       # [{"column", "values": {value: {field: v}}, "when_filled"}]
    set: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    source: str = "(none)"

    def as_dict(self):
        return {"columns": self.columns, "derive": self.derive, "set": self.set, "defaults": self.defaults,
                "source": self.source}

    @classmethod
    def from_dict(cls, data, source="(given)"):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            msg = f"mapping {source}: expected keys {', '.join(_KEYS[:4])}"
            raise InputError(msg)
        unknown = [k for k in data if k not in _KEYS]
        if unknown:
            msg = f"mapping {source}: unknown key {unknown[0]!r} (known: {', '.join(_KEYS[:4])})"
            raise InputError(msg)
        columns = {}
        for name, cols in (data.get("columns") or {}).items():
            _check_field(name, source)
            columns[name] = [str(c) for c in (cols if isinstance(cols, list) else [cols]) if c is not None]
        derive = []
        for i, rule in enumerate(data.get("derive") or []):
            if not isinstance(rule, dict) or "column" not in rule:
                msg = f"mapping {source}: derive rule {i + 1} needs a 'column'"
                raise InputError(msg)
            values = {str(k).strip(): dict(v or {}) for k, v in (rule.get("values") or {}).items()}
            filled = dict(rule.get("when_filled") or {})
            for fields_ in [*values.values(), filled]:
                for name in fields_:
                    _check_field(name, source)
            derive.append({"column": str(rule["column"]), "values": values, "when_filled": filled})
        consts = {}
        for key in ("set", "defaults"):
            consts[key] = {}
            for name, value in (data.get(key) or {}).items():
                _check_field(name, source)
                consts[key][name] = "" if value is None else str(value)
        return cls(columns, derive, consts["set"], consts["defaults"], source)

    def with_flags(self, maps=(), sets=()):
        """This mapping with CLI ``field=column`` and ``field=value`` pairs on top."""
        out = Mapping(dict(self.columns), list(self.derive), dict(self.set), dict(self.defaults), self.source)
        for pair in maps:
            name, column = _pair(pair, "--map", "field=column")
            _check_field(name, "--map")
            out.columns[name] = [c.strip() for c in column.split("+")]
        for pair in sets:
            name, value = _pair(pair, "--set", "field=value")
            _check_field(name, "--set")
            out.set[name] = value
        if maps or sets:
            out.source = f"{self.source} + flags" if self.source != "(none)" else "flags"
        return out

    def apply(self, raw, *, file_name="file"):
        """Source frame (strings + ``_row``) -> frame of every asset field (strings, "" blank), ``_row`` and
        ``properties`` (JSON text of the unmapped columns)."""
        headers = [c for c in raw.columns if c != ROW]
        for name, cols in self.columns.items():
            for col in cols:
                if col not in raw.columns:
                    raise _missing_column(file_name, col, headers, f"mapping of '{name}'")
        for rule in self.derive:
            if rule["column"] not in raw.columns:
                raise _missing_column(file_name, rule["column"], headers, "a derive rule")
        used = {c for cols in self.columns.values() for c in cols}
        auto = {}
        for col in headers:
            name = field_for_header(col)
            if name and name not in self.columns and name not in auto and col not in used:
                auto[name] = col
        n = len(raw)
        out = pd.DataFrame(index=raw.index)
        for name in FIELDS:
            if name in self.columns:
                out[name] = _join([raw[c] for c in self.columns[name]], raw.index)
            elif name in auto:
                out[name] = raw[auto[name]].str.strip()
            else:
                out[name] = _blank(raw.index)
        derived = {}
        for rule in self.derive:
            values = raw[rule["column"]].str.strip()
            lowered = values.str.lower()
            for value, fields_ in {k.lower(): v for k, v in rule["values"].items()}.items():
                hit = (lowered == value).to_numpy()
                _fill(derived, fields_, hit, n)
            if rule["when_filled"]:
                _fill(derived, rule["when_filled"], (values != "").to_numpy(), n)
        for name, (vals, have) in derived.items():
            out[name] = np.where(have, vals, out[name].to_numpy(dtype=object))
        for name, value in self.set.items():
            out[name] = value
        for name, value in self.defaults.items():
            out[name] = out[name].where(out[name] != "", value)
        mapped = used | set(auto.values())
        out["properties"] = properties(raw[[c for c in headers if c not in mapped]])
        out[ROW] = raw[ROW].to_numpy()
        out.attrs["auto"] = auto
        return out


def properties(frame):
    """One JSON object per row of the unmapped columns ("{}" when there are none)."""
    if not len(frame.columns):
        return pa.repeat("{}", len(frame)).to_pandas().array
    text = frame.to_json(orient="records", lines=True, force_ascii=False)
    return np.array(text.rstrip("\n").split("\n"), dtype=object)


def _fill(derived, fields_, hit, n):
    for name, value in fields_.items():
        vals, have = derived.setdefault(name, (np.full(n, "", dtype=object), np.zeros(n, dtype=bool)))
        new = hit & ~have
        vals[new] = "" if value is None else str(value)
        have |= new


def _blank(index):
    """A text column of "" (built by pyarrow: an object array of "" would be converted to text again by pandas)."""
    return pd.Series(pa.repeat("", len(index)).to_pandas().array, index=index)


def _join(series_list, index):
    """The columns' stripped values joined with ", ", blanks left out."""
    if not series_list:
        return _blank(index)
    joined = series_list[0].str.strip()
    for series in series_list[1:]:
        part = series.str.strip()
        both = (joined != "") & (part != "")
        joined = (joined + np.where(both, ", ", "") + part).astype(joined.dtype)
    return joined


def _check_field(name, source):
    if name not in FIELDS:
        hint = difflib.get_close_matches(normalise_word(name), list(FIELDS), n=1)
        extra = f" (did you mean '{hint[0]}'?)" if hint else ""
        msg = f"mapping {source}: '{name}' is not an asset field{extra}; fields: {', '.join(FIELDS)}"
        raise InputError(msg)


def _pair(text, flag, form):
    if "=" not in str(text):
        msg = f"{flag} takes {form}, got {text!r}"
        raise InputError(msg)
    name, value = str(text).split("=", 1)
    return name.strip(), value.strip()


def _missing_column(file_name, column, headers, what):
    hint = difflib.get_close_matches(column, headers, n=1)
    extra = f"; did you mean '{hint[0]}'?" if hint else f"; columns: {', '.join(headers[:30])}"
    return InputError(f"{file_name}: no column '{column}' (named in {what}){extra}")


def load_mapping(path):
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        msg = f"mapping file {path.name} not found"
        raise InputError(msg) from err
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        msg = f"mapping file {path.name} is not valid YAML: {str(err).splitlines()[0]}"
        raise InputError(msg) from err
    return Mapping.from_dict(data, source=path.name)


def shipped_mapping(file_name):
    """The ready mapping in layers/register_mappings/ for a register file of that name (e.g. libraries_stoke.csv)."""
    for path in sorted(MAPPINGS_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if Path(file_name).name in (data.get("files") or []) or path.stem == Path(file_name).stem:
            return path
    return None


def as_json(mapping):
    return json.loads(json.dumps(mapping.as_dict()))
