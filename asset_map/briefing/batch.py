"""Briefings for many areas in one run (``asset-map briefing --geography divisions --all -o DIR``): the county's
shared inputs are read once, then each area is built, drawn and rendered. Files are named by geography and code,
and the run writes ``index.csv`` listing them, so a folder can be checked and re-made; the same inputs and
``--as-of`` date give the same bytes."""

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from asset_map.briefing import data, render
from asset_map.store import geographies

FORMATS = ("pdf", "html")


@dataclass
class Document:
    briefing: dict
    png: bytes
    html: str
    pdf: bytes | None


def document(engine, shared, geography, code, *, pdf=True):
    """One area's briefing, its map image, printable HTML and (unless ``pdf=False``) its PDF."""
    b = data.build(engine, shared, geography, code)
    png = render.briefing_map(b, shared)
    html = render.briefing_html(b, png)
    return Document(b, png, html, render.pdf(html) if pdf else None)


def file_stem(geography, code):
    return f"{geography}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', code)}"


def write_all(engine, shared, geography, out_dir, *, codes=None, formats=("pdf",), progress=None):
    """Write the briefing of every area of ``geography`` (or those in ``codes``) to ``out_dir``; returns the rows of
    index.csv. ``progress(code)`` is called after each area."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    known = [a["code"] for a in geographies.areas(engine, geography)]
    todo = known if not codes else [c for c in known if c in set(codes)]
    missing = sorted(set(codes or ()) - set(known))
    if missing:
        from asset_map.errors import NotFound

        raise NotFound(f"Geography {geography!r} has no area {', '.join(missing[:10])}.")
    rows = []
    for code in todo:
        doc = document(engine, shared, geography, code, pdf="pdf" in formats)
        stem = file_stem(geography, code)
        written = []
        if "pdf" in formats:
            (out / f"{stem}.pdf").write_bytes(doc.pdf)
            written.append(f"{stem}.pdf")
        if "html" in formats:
            (out / f"{stem}.html").write_text(doc.html, encoding="utf-8")
            written.append(f"{stem}.html")
        b = doc.briefing
        rows.append({"geography": geography, "code": code, "name": b["name"], "assets": b["assets_total"],
                     "individuals": b["individuals"], "priority_gaps": len(b["gaps"]),
                     "verified_12m": render.pct(b["freshness"]["share_12m"]), "files": " ".join(written)})
        if progress:
            progress(code)
    with (out / "index.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["geography", "code"])
        writer.writeheader()
        writer.writerows(rows)
    return rows
