"""asset_map.freshness: shares verified in 3/6/12 months by tier and category, and the stale list."""

from datetime import date

import pandas as pd

from asset_map import freshness

TODAY = date(2026, 11, 30)


def _assets():
    return pd.DataFrame({
        "name": ["A", "B", "C", "D", "E"],
        "tier": ["association", "association", "organisation", "organisation", "organisation"],
        "category": ["youth_club", "youth_club", "library", "library", "park"],
        # 2 months, 5 months, 11 months, 3 years, never
        "last_verified": [date(2026, 9, 30), date(2026, 6, 30), date(2025, 12, 31), date(2023, 11, 1), None],
    })


def test_shares_by_tier_and_category_and_totals():
    out = freshness.shares(_assets(), today=TODAY).set_index(["tier", "category"])
    youth = out.loc[("association", "youth_club")]
    assert (youth["assets"], youth["verified_3m"], youth["verified_6m"], youth["verified_12m"]) == (2, 1, 2, 2)
    library = out.loc[("organisation", "library")]
    assert (library["verified_3m"], library["verified_12m"], library["share_12m"]) == (0, 1, 0.5)
    total = out.loc[("all", "all")]
    assert (total["assets"], total["verified_3m"], total["verified_6m"], total["verified_12m"],
            total["never_verified"]) == (5, 1, 2, 3, 1)
    assert out.loc[("organisation", "all")]["assets"] == 3


def test_window_edge_is_calendar_months():
    edge = pd.DataFrame({"tier": ["organisation"] * 2, "category": ["park"] * 2,
                         "last_verified": [date(2026, 8, 30), date(2026, 8, 29)]})
    row = freshness.shares(edge, today=TODAY).iloc[0]
    assert row["verified_3m"] == 1  # 30 Aug is exactly three months before 30 Nov; 29 Aug is not


def test_stale_list_never_verified_first():
    out = freshness.stale(_assets(), today=TODAY)
    assert list(out["name"]) == ["E", "D"]
    assert out["months_since"].isna().tolist() == [True, False] and out["months_since"].iloc[1] == 36


def test_empty_selection():
    out = freshness.shares(_assets().iloc[:0], today=TODAY)
    assert out.iloc[0]["assets"] == 0 and out.iloc[0]["share_3m"] is None
