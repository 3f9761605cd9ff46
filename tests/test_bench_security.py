"""The security benchmark runs and reports each figure against its reference (no timing asserted here)."""

from asset_map.tools.bench import security
from asset_map.tools.bench.core import BenchContext


def test_security_benchmark_reports_figures_with_references(db_url, tmp_path, monkeypatch):
    monkeypatch.setattr(security, "_N", 5)
    figures = security.run(BenchContext(scale="small", sizes={}, database_url=db_url, workdir=tmp_path))
    assert [f.unit for f in figures] == ["ms"] * 4
    assert all(f.value > 0 for f in figures)
    assert all(f.reference_value and f.reference_value > 0 for f in figures[:3])
    assert all(isinstance(f.met, bool) for f in figures)
