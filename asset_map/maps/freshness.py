"""What a district's freshness page shows: the share of its assets verified in the last 3, 6 and 12 months by tier
and category (asset_map.freshness, issue 19's computation), the stale list (contacts only for the roles that may
see them), confirm links sent and answered, and suggestions waiting. Also the one-line freshness of any selection
that a gap report records in its inputs. Nothing imports Flask."""

import io
from datetime import date
from decimal import Decimal

from asset_map import confirmations, freshness, privacy, suggestions
from asset_map.csv_writer import CsvWriter
from asset_map.reports import charts
from asset_map.store.assets import AssetFilter, select

COLUMNS = ["id", "name", "tier", "category", "postcode", "last_verified", "email", "phone", "district_code"]


def _assets(engine, flt, role):
    return select(engine, flt, role=role, columns=COLUMNS, order="id")


def district(engine, code, *, role="public", stale_months=12, today=None):
    """Everything the page shows, as plain data (the shares as a DataFrame)."""
    today = today or date.today()
    frame = _assets(engine, AssetFilter(district=(code,)), role)
    shares = freshness.shares(frame, today=today)
    stale = freshness.stale(frame, today=today, months=stale_months)
    if not privacy.sees_contacts(role):
        stale = stale.drop(columns=[c for c in ("email", "phone") if c in stale])
    overall = shares[(shares["tier"] == freshness.ALL) & (shares["category"] == freshness.ALL)].iloc[0].to_dict()
    return {"shares": shares, "overall": overall, "stale": stale, "confirmations": confirmations.counts(engine, code),
            "waiting": suggestions.waiting_count(engine, [code]), "today": today, "stale_months": stale_months,
            "chart": chart(overall)}


def chart(overall):
    """Inline SVG: the share (%) verified within 3, 6 and 12 months (the table beside it has the same numbers by
    tier and category)."""
    labels, values = [], []
    for n in freshness.WINDOWS:
        labels.append(f"{n} months")
        share = overall[f"share_{n}m"]
        values.append(None if share is None or share != share else round(100 * share, 1))
    title = f"Verified recently: % of {int(overall['assets'])} assets"
    return charts.bars(title, labels, values, x_label="Verified within", y_label="% of assets", y_max=100)


def csv_text(data, district_code):
    """The shares table as CSV (one row per tier and category, then per tier, then all)."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer, bom=False, lineterminator="\n")
    shares = data["shares"]
    writer.header(["district", *shares.columns])
    for row in shares.itertuples(index=False):
        writer.row([district_code, *(None if v is None or v != v else (Decimal(f"{v:.4f}") if isinstance(v, float)
                                                                        else v) for v in row)])
    return buffer.getvalue()


def summary(engine, flt, *, role="public", today=None):
    """{assets, verified_3m, share_3m, ...} of the assets a filter selects: the freshness a gap report records."""
    today = today or date.today()
    frame = _assets(engine, flt, role)
    shares = freshness.shares(frame, today=today)
    row = shares[(shares["tier"] == freshness.ALL) & (shares["category"] == freshness.ALL)].iloc[0].to_dict()
    out = {"as_of": today.isoformat(), "assets": int(row["assets"]), "never_verified": int(row["never_verified"])}
    for n in freshness.WINDOWS:
        out[f"verified_{n}m"] = int(row[f"verified_{n}m"])
        share = row[f"share_{n}m"]
        out[f"share_{n}m"] = None if share is None or share != share else round(float(share), 4)
    return out
