"""The import report: counts by status, tier, district and geocoding method, every problem row, duplicates across
registers (their number by reason and the first DUPLICATES_KEPT pairs; ``asset-map duplicates`` and the register
page's CSV list them all). Saved as JSON on the register (the web page shows it) and printed by the CLI."""

from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone

import pandas as pd

from asset_map.csv_writer import CsvWriter
from asset_map.registers.readers import ROW

# Two registers of the same places can pair up every asset: a million pairs would make the saved report, the page
# and the terminal unreadable. The report keeps their number by reason and the first ones, as examples.
DUPLICATES_KEPT = 1000
DUPLICATE_COLUMNS = ["source_row", "name", "other_register", "other_row", "other_name", "reason"]


@dataclass
class ImportReport:
    register: str
    source: str
    kind: str = "import"                 # import | retry
    rows_read: int = 0
    imported: int = 0                    # rows stored as assets (inserted + updated + unchanged)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    erased: int = 0                      # individuals erased: consent refused or withdrawn, or absent
    quarantined: int = 0
    by_status: dict = field(default_factory=dict)
    by_tier: dict = field(default_factory=dict)
    by_district: dict = field(default_factory=dict)
    by_method: dict = field(default_factory=dict)
    district_names: dict = field(default_factory=dict)
    problems: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)           # the first DUPLICATES_KEPT pairs, by row
    duplicates_total: int = 0
    duplicates_by_reason: dict = field(default_factory=dict)
    mapping: dict = field(default_factory=dict)
    auto_columns: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    finished_at: str = ""
    personal: bool = False               # the file holds individuals: values are shown to officers only

    def finish(self, placed, problems, counts, quarantined, district_names):
        # Only the counted columns: taking every column of a million placed rows costs about a second.
        counted = ["status", "tier", "district_code", "geocode_method"]
        good = placed.loc[~placed["error"].to_numpy(), counted] if placed is not None else pd.DataFrame()
        self.imported = len(good)
        self.inserted, self.updated = counts["inserted"], counts["updated"]
        self.unchanged, self.withdrawn = counts["unchanged"], counts["withdrawn"]
        self.erased = int(counts.get("erased", 0))
        self.quarantined = int(quarantined)
        if len(good):
            self.by_status = _counts(good["status"])
            self.by_tier = _counts(good["tier"])
            self.by_district = _counts(good["district_code"])
            self.by_method = _counts(good["geocode_method"])
        self.district_names = {k: v for k, v in district_names.items() if k in self.by_district}
        if placed is not None and len(placed):
            self.personal = bool((placed["tier"] == "individual").any() or placed["consent"].notna().any())
        frame = problems.copy()
        frame["value"] = frame["value"].astype(object).where(frame["value"].notna(), "")
        frame["row"] = frame["row"].astype("int64")
        self.problems = frame.to_dict("records")
        self.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")

    def add_duplicates(self, pairs, *, keep=None):
        """Possible duplicates in other registers (dicts of DUPLICATE_COLUMNS, by row): all of them counted by reason,
        the first ``keep`` (DUPLICATES_KEPT) listed."""
        self.duplicates = list(pairs[:DUPLICATES_KEPT if keep is None else keep])
        self.duplicates_total = len(pairs)
        self.duplicates_by_reason = dict(sorted(Counter(p["reason"] for p in pairs).items()))

    @property
    def duplicates_more(self):
        """Pairs found but not listed in the report."""
        return self.duplicates_total - len(self.duplicates)

    @property
    def errors(self):
        return [p for p in self.problems if p["severity"] == "error"]

    @property
    def warnings(self):
        return [p for p in self.problems if p["severity"] == "warning"]

    def as_dict(self):
        # Shallow: dataclasses.asdict deep-copies every problem row, seconds for a big register's report.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data):
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        # Reports saved before duplicates were counted listed every pair.
        known.setdefault("duplicates_total", len(known.get("duplicates", [])))
        return cls(**known)

    def summary(self):
        """One line: what happened."""
        return (f"{self.register}: {self.rows_read:,} rows read, {self.imported:,} imported ({self.inserted:,} new, "
                f"{self.updated:,} updated, {self.unchanged:,} unchanged), {self.quarantined:,} quarantined, "
                f"{self.withdrawn:,} withdrawn" + (f" ({self.erased:,} individuals erased)" if self.erased else ""))


def redacted(report):
    """The report as somebody below officer may see it when the register holds individuals: counts and reasons,
    no values or names (they may be personal data)."""
    if not report.personal:
        return report
    data = report.as_dict()
    data["problems"] = [{**p, "value": "(hidden)"} for p in report.problems]
    data["duplicates"] = [{**d, "name": "(hidden)", "other_name": "(hidden)"} for d in report.duplicates]
    return ImportReport.from_dict(data)


def _counts(series):
    """{value: count} by value, missing values as "(none)". Counted in the column's own dtype: converting a million
    Arrow strings to Python objects first costs far more than the counting."""
    out = {}
    for value, n in series.value_counts(dropna=False).items():
        key = "(none)" if pd.isna(value) else str(value)
        out[key] = out.get(key, 0) + int(n)
    return dict(sorted(out.items()))


def format_text(report, *, problems_limit=None):
    """The report as plain text for the terminal: counts, then every problem row (or the first ``limit``)."""
    lines = [report.summary()]
    if report.timings:
        lines.append("  time: " + ", ".join(f"{k} {v:.2f} s" for k, v in report.timings.items()))
    for title, counts in (("status", report.by_status), ("tier", report.by_tier), ("method", report.by_method)):
        if counts:
            lines.append(f"  by {title}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if report.by_district:
        lines.append("  by district:")
        for code, n in report.by_district.items():
            lines.append(f"    {code} {report.district_names.get(code, '')}: {n:,}".rstrip())
    problems = report.problems if problems_limit is None else report.problems[:problems_limit]
    if report.problems:
        lines.append(f"  problems ({len(report.errors):,} errors: row quarantined; {len(report.warnings):,} "
                     f"warnings: row imported):")
        for p in problems:
            lines.append(f"    row {p['row']}: {p['severity']}: {p['field']} {_short(p['value'])!r}: {p['reason']}")
        if len(problems) < len(report.problems):
            lines.append(f"    ... and {len(report.problems) - len(problems):,} more (asset-map quarantine list "
                         f"{report.register})")
    if report.duplicates_total:
        by_reason = ", ".join(f"{k} {v:,}" for k, v in report.duplicates_by_reason.items())
        lines.append(f"  possible duplicates in other registers ({report.duplicates_total:,}"
                     f"{': ' + by_reason if by_reason else ''}; reported, not merged):")
        for d in report.duplicates:
            lines.append(f"    row {d['source_row']} {d['name']!r} ~ {d['other_register']} row {d['other_row']} "
                         f"{d['other_name']!r}: {d['reason']}")
        if report.duplicates_more:
            lines.append(f"    ... and {report.duplicates_more:,} more (asset-map duplicates {report.register})")
    return "\n".join(lines)


def write_duplicates_csv(pairs, stream, *, hidden=False, bom=False):
    """Pairs (dicts of DUPLICATE_COLUMNS) as CSV with a header line, cells safe to open in a spreadsheet; names as
    "(hidden)" when ``hidden``. Files for Excel want ``bom``."""
    writer = CsvWriter(stream, bom=bom)
    writer.header(DUPLICATE_COLUMNS)
    for pair in pairs:
        if hidden:
            pair = {**pair, "name": "(hidden)", "other_name": "(hidden)"}
        writer.row([pair[c] for c in DUPLICATE_COLUMNS])


def _short(value, n=60):
    text = str(value)
    return text if len(text) <= n else text[: n - 1] + "\u2026"


__all__ = ["DUPLICATE_COLUMNS", "DUPLICATES_KEPT", "ImportReport", "format_text", "write_duplicates_csv", "ROW"]
