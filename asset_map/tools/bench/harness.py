"""Run benchmark modules: a throwaway PostGIS cluster, one empty migrated database per module, each module's
figures printed with their references as they come. A module that fails is reported, never fatal.
"""

import importlib
import importlib.util
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from asset_map.tools.bench import MODULES
from asset_map.tools.bench.core import SCALES, BenchContext, Figure

# Areas the issues name, and the module that measures each, so `--only export` finds `exports`.
AREA_MODULES = {"import": "imports", "geocode": "imports", "map": "mappage", "export": "exports", "ogc": "exports",
                "gap": "gaps", "load": "load", "geography": "geographies", "briefing": "geographies",
                "tiles": "national", "tables": "national", "memory": "national"}


@dataclass
class ModuleResult:
    name: str
    status: str = "ok"          # ok | failed
    seconds: float = 0.0
    figures: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    error: str | None = None


def select_modules(only=None, modules=None):
    """The module names or paths to run: ``modules`` when given, else MODULES, narrowed by ``only`` (module names
    or area words, comma-separated)."""
    names = list(modules) if modules else list(MODULES)
    if not only:
        return names
    wanted = {w.strip() for w in only.split(",") if w.strip()}
    wanted |= {AREA_MODULES[w] for w in list(wanted) if w in AREA_MODULES}
    return [n for n in names if _short(n) in wanted]


def _short(name):
    return Path(name).stem if name.endswith(".py") else name.rsplit(".", 1)[-1]


def load_module(name):
    """A module of asset_map.tools.bench by short name, a dotted module path, or a .py file."""
    if name.endswith(".py"):
        spec = importlib.util.spec_from_file_location(f"bench_{_short(name)}", name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(name if "." in name else f"asset_map.tools.bench.{name}")


class Databases:
    """A PostgreSQL server for the run (a throwaway cluster unless ``server_url`` names one) and a migrated
    template that each module's database is copied from."""

    TEMPLATE = "bench_template"

    def __init__(self, server_url=None):
        self.cluster = None
        if server_url:
            self.base = server_url.rstrip("/")
        else:
            from asset_map.store.cluster import Cluster

            root = tempfile.mkdtemp(prefix="asset-map-bench-pg-")
            os.chmod(root, 0o755)  # the postgres user must reach the data directory
            self.cluster = Cluster(root, durable=False)
            self.cluster.start()
            self.base = self.cluster.url("").rstrip("/")
        self._create(self.TEMPLATE)
        from asset_map.store.db import upgrade

        engine = create_engine(self.url(self.TEMPLATE), poolclass=NullPool)
        upgrade(engine)
        with engine.connect() as conn:
            self.versions = {"postgresql": conn.execute(text("SHOW server_version")).scalar(),
                             "postgis": conn.execute(text("SELECT postgis_lib_version()")).scalar()}
        engine.dispose()

    def url(self, name):
        return f"{self.base}/{name}"

    def _admin(self, sql):
        engine = create_engine(self.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(sql))
        engine.dispose()

    def _create(self, name, template=None):
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))

    def fresh(self, name):
        db = f"bench_{name}"
        self._create(db, template=self.TEMPLATE)
        return self.url(db)

    def drop(self, name):
        self._admin(f'DROP DATABASE IF EXISTS "bench_{name}" WITH (FORCE)')

    def close(self):
        if self.cluster:
            self.cluster.destroy()
        else:
            self._admin(f'DROP DATABASE IF EXISTS "{self.TEMPLATE}" WITH (FORCE)')


def format_value(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def ratio(figure):
    if figure.reference_value in (None, 0) or figure.value is None:
        return None
    return figure.value / figure.reference_value


def describe(figure):
    """One line per figure, the way the harness prints it."""
    line = f"  [{figure.area}] {figure.name}: {format_value(figure.value)} {figure.unit}"
    if figure.reference:
        r = ratio(figure)
        line += f" (reference {figure.reference}: {format_value(figure.reference_value)}"
        line += f"; ratio {r:.2f})" if r is not None else ")"
    if figure.target:
        met = {True: "met", False: "NOT MET", None: "not judged"}[figure.met]
        line += f"; target {figure.target}: {met}"
    return line


def run_module(name, scale, databases, workdir, out=None):
    out = out or sys.stdout
    result = ModuleResult(_short(name))
    started = time.perf_counter()
    mod_dir = Path(workdir) / result.name
    mod_dir.mkdir(parents=True, exist_ok=True)
    print(f"== {result.name} ({scale})", file=out, flush=True)
    try:
        module = load_module(name)
        ctx = BenchContext(scale=scale, sizes=dict(SCALES[scale]), database_url=databases.fresh(result.name),
                           workdir=mod_dir)
        result.notes = ctx.notes
        figures = module.run(ctx)
        for figure in figures:
            if not isinstance(figure, Figure):
                msg = f"run() returned {type(figure).__name__}, not a Figure"
                raise TypeError(msg)
            print(describe(figure), file=out, flush=True)
        result.figures = list(figures)
    except Exception as err:  # noqa: BLE001 - one module's failure must not stop the others
        result.status = "failed"
        result.error = f"{type(err).__name__}: {err}"
        print(f"  FAILED: {result.error}", file=out, flush=True)
        traceback.print_exc(file=sys.stderr)
    finally:
        try:
            databases.drop(result.name)
        except Exception as err:  # noqa: BLE001 - a database left behind dies with the throwaway cluster
            print(f"  (could not drop bench_{result.name}: {err})", file=out)
    result.seconds = time.perf_counter() - started
    print(f"  {result.name}: {result.status} in {result.seconds:.1f} s", file=out, flush=True)
    return result


def run_all(scale, names, *, server_url=None, workdir=None, out=None):
    """Run the named modules; returns (results, database versions, seconds)."""
    if scale not in SCALES:
        msg = f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}"
        raise ValueError(msg)
    started = time.perf_counter()
    own_workdir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="asset-map-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    databases = Databases(server_url)
    try:
        results = [run_module(name, scale, databases, workdir, out=out) for name in names]
    finally:
        databases.close()
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return results, databases.versions, time.perf_counter() - started
