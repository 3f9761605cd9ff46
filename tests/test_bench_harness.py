"""The benchmark harness: modules run against fresh databases, failures are reported, BENCHMARKS.md and the JSON
carry every figure with its reference, and two runs compare."""

import contextlib
import io
import json
from pathlib import Path

import pytest

from asset_map.tools.bench import __main__ as bench_main
from asset_map.tools.bench import harness, loadgen

DATA = Path(__file__).parent / "data"
DUMMY, BROKEN = str(DATA / "bench_dummy.py"), str(DATA / "bench_broken.py")


@pytest.fixture(scope="module")
def bench_run(pg_server, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("bench")
    out = tmp_path / "out"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = bench_main.main(["--scale", "small", "--module", BROKEN, "--module", DUMMY, "--out", str(out),
                                "--server-url", pg_server.base, "--workdir", str(tmp_path / "work")])
    return code, out, printed.getvalue(), tmp_path


def test_harness_runs_modules_and_reports_a_failure_without_stopping(bench_run):
    code, out, printed, tmp_path = bench_run
    assert code == 0
    assert "FAILED: RuntimeError: the thing under test is not there" in printed
    assert ("[dummy] rows per second, 1,000 rows: 2,500 rows/s (reference plain INSERT: 1,000; ratio 2.50); "
            "target >= 2x reference: met") in printed
    assert "[dummy] page weight: 1.50 MB; target < 1 MB: NOT MET" in printed
    assert (tmp_path / "work" / "bench_dummy" / "scratch.txt").read_text() == "used"


def test_benchmarks_json_holds_figures_modules_and_machine(bench_run):
    _, out, _, _ = bench_run
    data = json.loads((out / "benchmarks.json").read_text())
    assert data["scale"] == "small" and data["commit"]
    assert [(m["name"], m["status"]) for m in data["modules"]] == [("bench_broken", "failed"), ("bench_dummy", "ok")]
    assert data["modules"][0]["error"] == "RuntimeError: the thing under test is not there"
    (note,) = data["modules"][1]["notes"]
    assert note.startswith("empty migrated database at revision ") and note.endswith(" with 0 assets")
    first, second = data["figures"]
    assert first["ratio"] == 2.5 and first["module"] == "bench_dummy" and first["met"] is True
    assert second["ratio"] is None and second["met"] is False
    m = data["machine"]
    assert m["cores"] >= 1 and m["python"] and m["postgis"].startswith("3.") and m["postgresql"]


def test_benchmarks_md_has_tables_per_area_machine_and_missed_targets(bench_run):
    _, out, _, _ = bench_run
    md = (out / "BENCHMARKS.md").read_text()
    assert "## dummy" in md and "## Machine" in md and "| PostGIS | 3." in md
    assert ("| rows per second, 1,000 rows | 2,500 rows/s | plain INSERT: 1,000 | 2.50 | >= 2x reference | yes |"
            in md)
    assert "| page weight | 1.50 MB | - | - | < 1 MB | **no** | scale small |" in md
    assert "| bench_broken | failed |" in md
    assert "- **bench_broken** failed: RuntimeError: the thing under test is not there" in md
    assert "## Targets missed\n\n- [dummy] page weight: 1.50 MB, target < 1 MB" in md
    assert "make bench BENCH_SCALE=small" in md


def test_compare_matches_figures_between_runs(bench_run, capsys):
    _, out, _, tmp_path = bench_run
    old = json.loads((out / "benchmarks.json").read_text())
    new = json.loads(json.dumps(old))
    new["figures"][0]["value"] = 3000.0
    new["figures"][0]["ratio"] = 3.0
    new["figures"].pop()
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert bench_main.main(["compare", str(out / "benchmarks.json"), str(tmp_path / "new.json")]) == 0
    printed = capsys.readouterr().out
    assert "| dummy | rows per second, 1,000 rows | 2,500 rows/s | 3,000 rows/s | +20.0 % | 2.50 | 3.00 |" in printed
    assert "| dummy | page weight | 1.50 MB | - | only old |" in printed


def test_only_selects_modules_by_name_or_area():
    names = ["imports", "mappage", "exports", "gaps", "load"]
    assert harness.select_modules("export", names) == ["exports"]
    assert harness.select_modules("ogc,load", names) == ["exports", "load"]
    assert harness.select_modules("gaps", names) == ["gaps"]
    assert harness.select_modules(None, names) == names
    assert harness.select_modules("nothing", names) == []


def test_every_listed_module_has_a_run_function():
    from asset_map.tools.bench import MODULES

    assert "load" in MODULES
    for name in MODULES:
        assert callable(harness.load_module(name).run), name


def test_load_generator_counts_requests_latency_and_errors(app, live_server):
    base = live_server(app)
    tools = ["python"] + (["wrk"] if loadgen.wrk_path() else [])
    for tool in tools:
        ok = loadgen.run(base, ["/static/css/site.css"], clients=2, seconds=1, tool=tool)
        assert ok.requests > 10 and ok.errors == 0, (tool, ok)
        assert 0 < ok.p50_ms <= ok.p95_ms <= ok.p99_ms <= ok.max_ms
        assert ok.rps == pytest.approx(ok.requests / ok.seconds)
        mixed = loadgen.run(base, ["/static/css/site.css", "/no-such-page"], clients=2, seconds=1, tool=tool)
        assert mixed.errors == pytest.approx(mixed.requests / 2, abs=4), (tool, mixed)


def test_load_generator_refuses_other_hosts():
    from asset_map.errors import ConfigError

    with pytest.raises(ConfigError, match="loopback only"):
        loadgen.run("http://example.org", ["/"], clients=1, seconds=1)


def test_python_generator_stops_at_its_request_bound(app, live_server):
    res = loadgen.run(live_server(app), ["/static/css/site.css"], clients=3, seconds=10, tool="python",
                      max_requests=25)
    assert res.requests == 25 and res.seconds < 5
