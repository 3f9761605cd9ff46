"""Briefings for many areas in one run (``asset-map briefing --geography divisions --all -o DIR``): the county's
shared inputs are read once, then each area is built, drawn and rendered. Files are named by geography and code,
and the run writes ``index.csv`` listing them, so a folder can be checked and re-made; the same inputs and
``--as-of`` date give the same bytes."""

import re
from dataclasses import dataclass
from pathlib import Path

from asset_map.briefing import data, render
from asset_map.csv_writer import CsvWriter
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


def write_all(engine, shared, geography, out_dir, *, codes=None, formats=("pdf",), progress=None, jobs=1):
    """Write the briefing of every area of ``geography`` (or those in ``codes``) to ``out_dir``; returns the rows of
    index.csv. ``progress(code)`` is called after each area. ``jobs`` > 1 renders in that many processes (forked,
    each with its own database connection; rendering is CPU-bound Python): the files are the same either way."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    known = [a["code"] for a in geographies.areas(engine, geography)]
    todo = known if not codes else [c for c in known if c in set(codes)]
    missing = sorted(set(codes or ()) - set(known))
    if missing:
        from asset_map.errors import NotFound

        raise NotFound(f"Geography {geography!r} has no area {', '.join(missing[:10])}.")
    task = (geography, str(out), tuple(formats))
    if jobs > 1 and len(todo) > 1:
        rows = _in_processes(engine, shared, task, todo, jobs, progress)
    else:
        rows = []
        for code in todo:
            rows.append(_write_one(engine, shared, task, code))
            if progress:
                progress(code)
    with (out / "index.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = CsvWriter(fh, bom=False)
        names = list(rows[0]) if rows else ["geography", "code"]
        writer.header(names)
        writer.rows([row[n] for n in names] for row in rows)
    return rows


def _write_one(engine, shared, task, code):
    geography, out, formats = task
    out = Path(out)
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
    return {"geography": geography, "code": code, "name": b["name"], "assets": b["assets_total"],
            "individuals": b["individuals"], "priority_gaps": len(b["gaps"]),
            "verified_12m": render.pct(b["freshness"]["share_12m"]), "files": " ".join(written)}


# What forked workers inherit (set just before the pool forks): the county's shared inputs and where the database is.
_WORKER = {}


def _in_processes(engine, shared, task, todo, jobs, progress):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    _WORKER.update(shared=shared, task=task, url=engine.url.render_as_string(hide_password=False))
    engine.dispose()  # no pooled connection may be shared with the children
    rows = {}
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
            for code, row in pool.map(_worker, todo):
                rows[code] = row
                if progress:
                    progress(code)
    finally:
        _WORKER.clear()
    return [rows[c] for c in todo]


def _worker(code):
    from asset_map.store.db import make_engine

    if "engine" not in _WORKER:
        _WORKER["engine"] = make_engine(_WORKER["url"], _WORKER["shared"].settings)
    return code, _write_one(_WORKER["engine"], _WORKER["shared"], _WORKER["task"], code)
