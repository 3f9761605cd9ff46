"""`python -m asset_map.tools.bench --scale small|county|england [--only AREA]` (what `make bench` runs), and
`python -m asset_map.tools.bench compare OLD.json NEW.json`."""

import argparse
import json
import os
import shlex
import sys
from datetime import datetime, timezone

from asset_map.tools.bench import harness
from asset_map.tools.bench import results as report
from asset_map.tools.bench.core import SCALES
from asset_map.config import PROJECT_DIR


def _compare(argv):
    parser = argparse.ArgumentParser(prog="python -m asset_map.tools.bench compare",
                                     description="Compare two runs' benchmarks.json, figure by figure.")
    parser.add_argument("old")
    parser.add_argument("new")
    args = parser.parse_args(argv)
    with open(args.old, encoding="utf-8") as f_old, open(args.new, encoding="utf-8") as f_new:
        print("\n".join(report.compare(json.load(f_old), json.load(f_new))))
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["compare"]:
        return _compare(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m asset_map.tools.bench",
                                     description="Run every benchmark module at a scale; write BENCHMARKS.md and "
                                                 "benchmarks.json.")
    parser.add_argument("--scale", default=os.environ.get("BENCH_SCALE", "small"), choices=list(SCALES))
    parser.add_argument("--only", help="module names or areas, comma-separated (import, map, export, ogc, gap, "
                                       "load)")
    parser.add_argument("--module", action="append", dest="modules",
                        help="run this module instead of MODULES (name, dotted path or .py file; repeatable)")
    parser.add_argument("--out", default=str(PROJECT_DIR), help="where BENCHMARKS.md and benchmarks.json go")
    parser.add_argument("--server-url", default=os.environ.get("ASSET_MAP_BENCH_SERVER_URL"),
                        help="an existing PostgreSQL server (postgresql+psycopg://user@host:port) instead of a "
                             "throwaway cluster")
    parser.add_argument("--workdir", help="scratch directory to keep (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    names = harness.select_modules(args.only, args.modules)
    if not names:
        print(f"no benchmark module matches --only {args.only!r}", file=sys.stderr)
        return 2
    started = datetime.now(timezone.utc)
    results, versions, seconds = harness.run_all(args.scale, names, server_url=args.server_url,
                                                 workdir=args.workdir)
    command = "python -m asset_map.tools.bench " + shlex.join(argv or ["--scale", args.scale])
    data = report.as_json(args.scale, results, versions, seconds, command, started=started)
    md, js = report.write(data, args.out)
    failed = [r.name for r in results if r.status != "ok"]
    print(f"wrote {md} and {js} in {seconds:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
