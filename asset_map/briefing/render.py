"""A briefing (or a directory) as HTML and PDF. The web page and the printable document share one template body;
the PDF is WeasyPrint's rendering of the printable HTML, with a URL fetcher that refuses everything but the
``data:`` URIs the document carries (the map image), so nothing is fetched at render time.

Same inputs, same bytes: the map PNG carries no date or software, the PDF's creation date is the briefing's own
date, and WeasyPrint writes no other varying field.
"""

import base64
import math
from datetime import date

import weasyprint
import weasyprint.urls
from jinja2 import Environment, FileSystemLoader, select_autoescape

from asset_map.briefing import mapimage
from asset_map.config import PROJECT_DIR
from asset_map.errors import AssetMapError

_ENV = Environment(loader=FileSystemLoader(str(PROJECT_DIR / "templates")), autoescape=select_autoescape(["html"]),
                   keep_trailing_newline=True)


def num(value, decimals=0):
    """1,234 / 12.5 / '–' for nothing; negative ``decimals`` rounds to tens, hundreds (for estimates)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if decimals < 0:
        return f"{round(value, decimals):,.0f}"
    return f"{value:,.{decimals}f}"


def pct(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value) * 100:.0f}%"


def day(value):
    if not isinstance(value, date):
        return str(value or "–")
    return f"{value.day} {value:%B %Y}"


HELPERS = {"num": num, "pct": pct, "day": day}


def briefing_map(b, shared):
    """The briefing's map image (PNG bytes): the area, its LSOAs by need, districts around it, its assets."""
    lsoas = shared.lsoas_bng[shared.lsoas_bng["code"].isin(b["lsoas"]["code"])]
    return mapimage.area_map(b["geometry"], lsoas=lsoas, context=shared.lsoas_bng, districts=shared.districts_bng,
                             assets=b["assets"], title=b["name"])


def context(b, png):
    return {"b": b, "map_png": base64.b64encode(png).decode("ascii"), **HELPERS}


def briefing_html(b, png, *, env=None):
    """The printable A4 document (one self-contained HTML file)."""
    return (env or _ENV).get_template("briefing/print.html").render(**context(b, png))


def pdf(html):
    """PDF bytes of a self-contained printable HTML document. Only ``data:`` URIs are read (the map image it
    carries): any other URL fails the rendering rather than going online."""
    fetcher = weasyprint.urls.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
    try:
        return weasyprint.HTML(string=html, url_fetcher=fetcher, base_url="about:blank").write_pdf()
    except weasyprint.urls.FatalURLFetchingError as err:
        msg = "The printable document refers to something outside itself; documents carry everything they show."
        raise AssetMapError(msg, status=500) from err
