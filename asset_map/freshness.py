"""How fresh a selection of assets is: the share verified in the last 3, 6 and 12 months by tier and category, and
the stale list. Frame in, frame out: no store, no Flask, no HTML, so briefings, the freshness page per district
and any report can call it on whatever selection they read (``asset_map.store.assets.select`` with the shared
AssetFilter, as the reader's role may see it).

"Verified within N months" means ``last_verified`` on or after ``today`` minus N calendar months, the same rule as
the shared filter's ``verified_within``; an asset never verified counts as not verified in any window and is stale.
"""

from datetime import date

import pandas as pd

WINDOWS = (3, 6, 12)
ALL = "all"


def _since(today, months):
    return (pd.Timestamp(today) - pd.DateOffset(months=months)).date()


def _dates(assets):
    return pd.to_datetime(assets["last_verified"], errors="coerce").dt.date


def shares(assets, *, today=None, windows=WINDOWS):
    """One row per tier and category present in ``assets`` (needs ``tier``, ``category``, ``last_verified``),
    then one row per tier (category "all") and one for everything (tier and category "all"): ``assets``,
    ``verified_<n>m`` and ``share_<n>m`` (0..1, None when there are no assets) per window, ``never_verified``."""
    today = today or date.today()
    verified = _dates(assets)
    frame = pd.DataFrame({"tier": assets["tier"].astype(object), "category": assets["category"].astype(object),
                          "never": verified.isna()})
    for n in windows:
        since = _since(today, n)
        frame[f"in_{n}"] = verified.map(lambda d, s=since: d is not None and d == d and d >= s)
    groups = [frame.groupby(["tier", "category"], sort=True),
              frame.assign(category=ALL).groupby(["tier", "category"], sort=True),
              frame.assign(tier=ALL, category=ALL).groupby(["tier", "category"], sort=True)]
    rows = []
    for grouped in groups:
        for (tier, category), part in grouped:
            row = {"tier": tier, "category": category, "assets": int(len(part))}
            for n in windows:
                row[f"verified_{n}m"] = int(part[f"in_{n}"].sum())
                row[f"share_{n}m"] = row[f"verified_{n}m"] / len(part) if len(part) else None
            row["never_verified"] = int(part["never"].sum())
            rows.append(row)
    if not rows:
        rows.append({"tier": ALL, "category": ALL, "assets": 0, **{f"verified_{n}m": 0 for n in windows},
                     **{f"share_{n}m": None for n in windows}, "never_verified": 0})
    columns = ["tier", "category", "assets"] + [c for n in windows for c in (f"verified_{n}m", f"share_{n}m")] \
        + ["never_verified"]
    return pd.DataFrame(rows)[columns]


def stale(assets, *, today=None, months=12):
    """The assets not verified within ``months`` (never verified first, then the longest unverified), with
    ``months_since`` (None when never verified). Keeps every column given."""
    today = today or date.today()
    verified = _dates(assets)
    since = _since(today, months)
    mask = verified.isna() | verified.map(lambda d: d is not None and d == d and d < since)
    out = assets.loc[mask].copy()
    dates = verified[mask]
    out["months_since"] = pd.array([None if d is None or d != d else (today.year - d.year) * 12 + today.month
                                    - d.month for d in dates], dtype="Int64")
    out["_order"] = dates.map(lambda d: date.min if d is None or d != d else d)
    sort = ["_order"] + (["name"] if "name" in out else [])
    return out.sort_values(sort, kind="mergesort").drop(columns="_order").reset_index(drop=True)
