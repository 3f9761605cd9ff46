"""The `asset-map` command. Each command is a thin adapter: parse options, call the core, print a summary.

An AssetMapError ends the command with its one-line message and exit status 1; anything else is a bug and shows its
traceback.
"""

import sys
from datetime import date
from pathlib import Path

import click

from asset_map.config import SETTINGS, default_reference_dir, load_settings
from asset_map.errors import AssetMapError


class Cli(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AssetMapError as err:
            click.echo(f"error: {err.user_message}", err=True)
            sys.exit(1)


def _settings_help():
    return "\n".join(f"  ASSET_MAP_{s.name}: {s.help}" for s in SETTINGS)


@click.group(cls=Cli, epilog="\b\nSettings (environment variables):\n" + _settings_help(),
             context_settings={"max_content_width": 118})
def cli():
    """asset-map: community assets, need and gaps, as PostGIS layers and maps."""


def _engine():
    from asset_map.store.db import get_engine

    return get_engine(load_settings())


# -- database --------------------------------------------------------------------------------------------------
@cli.group()
def db():
    """The database: the local cluster and the schema."""


@db.command("start")
def db_start():
    """Create (first time) and start the local PostGIS cluster under var/."""
    from asset_map.store.db import local_cluster

    settings = load_settings()
    if settings["DATABASE_URL"]:
        click.echo("ASSET_MAP_DATABASE_URL is set: the local cluster is not used.")
        return
    cluster = local_cluster(settings)
    cluster.start()
    click.echo(f"local PostGIS running: {cluster.url()}")


@db.command("stop")
def db_stop():
    """Stop the local cluster."""
    from asset_map.store.db import local_cluster

    local_cluster().stop()
    click.echo("local PostGIS stopped")


@db.command("status")
def db_status():
    """Where the database is and what it holds."""
    from asset_map.layers.queries import counts
    from asset_map.store.db import database_url, health, local_cluster

    settings = load_settings()
    if settings["DATABASE_URL"]:
        click.echo(f"database: {database_url(settings, start=False)} (from ASSET_MAP_DATABASE_URL)")
    else:
        for key, value in local_cluster(settings).status().items():
            click.echo(f"{key}: {value}")
        if not local_cluster(settings).running():
            return
    report = health(_engine())
    for key, value in report.items():
        click.echo(f"{key}: {value}")
    if report["status"] == "ok":
        for key, value in counts(_engine()).items():
            click.echo(f"{key}: {value:,}")


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Create or upgrade the schema (Alembic)."""
    from asset_map.store.db import current_revision, upgrade

    engine = _engine()
    upgrade(engine, revision)
    click.echo(f"schema at revision {current_revision(engine)}")


# -- reference data --------------------------------------------------------------------------------------------
@cli.group()
def load():
    """Load reference data: districts, areas, need indicators, postcodes, or a whole pack."""


def _print_result(result):
    click.echo(result.summary())
    if len(result.rejected):
        click.echo(result.rejected.head(20).to_string(index=False))
        if len(result.rejected) > 20:
            click.echo(f"... and {len(result.rejected) - 20:,} more")


@load.command("districts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--code-field", help="Field holding the ONS district code (detected when omitted).")
@click.option("--name-field", help="Field holding the district name (detected when omitted).")
@click.option("--replace", is_flag=True, help="Remove all districts first.")
def load_districts(file, code_field, name_field, replace):
    """District boundaries (GeoJSON, GeoPackage or Shapefile)."""
    from asset_map.reference.load import load_districts as run

    _print_result(run(_engine(), file, code_field=code_field, name_field=name_field, replace=replace))


@load.command("areas")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--vintage", type=click.Choice(["2011", "2021"]), required=True, help="LSOA vintage.")
@click.option("--code-field")
@click.option("--name-field")
@click.option("--district-field")
@click.option("--replace", is_flag=True, help="Remove all areas of this vintage first.")
def load_areas(files, vintage, code_field, name_field, district_field, replace):
    """Small areas (LSOAs) of one vintage, from one file or several."""
    from asset_map.reference.load import load_areas as run

    _print_result(run(_engine(), list(files), vintage=int(vintage), code_field=code_field, name_field=name_field,
                      district_field=district_field, replace=replace))


@load.command("need")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--indicator", default="imd", show_default=True, help="Indicator name (domains get a suffix).")
@click.option("--vintage", type=int, required=True, help="e.g. 2019 or 2025.")
@click.option("--replace", is_flag=True, help="Remove this indicator's vintage first.")
def load_need(file, indicator, vintage, replace):
    """Need indicators from a CSV keyed by area code (the official MHCLG layouts included)."""
    from asset_map.reference.load import load_need as run

    _print_result(run(_engine(), file, indicator=indicator, vintage=vintage, replace=replace))


@load.command("postcodes")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", help="Source name (detected: codepoint-open, nspl, ...).")
@click.option("--vintage", help="Source vintage, e.g. 2014-08.")
@click.option("--replace", is_flag=True, help="Remove this source's postcodes first.")
def load_postcodes(file, source, vintage, replace):
    """A postcode gazetteer: OS Code-Point Open or ONS NSPL/ONSPD."""
    from asset_map.reference.load import load_postcodes as run

    _print_result(run(_engine(), file, source=source, vintage=vintage, replace=replace))


@load.command("pack")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
def load_pack(directory):
    """Every reference file of a pack folder (e.g. ../shared/data/staffordshire)."""
    from asset_map.reference.pack import load_pack as run

    run(_engine(), directory, progress=_print_result)


# -- layers ----------------------------------------------------------------------------------------------------
@cli.group()
def layers():
    """Map layer definitions (layers/*.yaml)."""


@layers.command("check")
def layers_check():
    """Validate every layer file; exit 1 listing every problem."""
    from asset_map.layers.spec import LAYERS_DIR, check_layers

    problems = check_layers(LAYERS_DIR)
    for p in problems:
        click.echo(p, err=True)
    if problems:
        sys.exit(1)
    click.echo(f"layers OK ({len(list(Path(LAYERS_DIR).glob('*.yaml')))} files)")


@layers.command("list")
@click.option("--by-category", is_flag=True, help="One layer per tier x district x category.")
@click.option("--role", type=click.Choice(["public", "organiser", "officer", "admin"]), default="officer",
              show_default=True, help="Count what this role may see.")
def layers_list(by_category, role):
    """The asset layers (tier x district, optionally x category) with their feature counts."""
    from asset_map.layers.catalogue import asset_layers
    from asset_map.store.assets import count

    engine = _engine()
    click.echo(f"{'assets':<45} {count(engine, role=role):>9,}")
    for layer, _tier, _district, name, _cat, n in asset_layers(engine, by_category=by_category, role=role):
        click.echo(f"{layer:<45} {n:>9,}  {name or ''}")


# -- registers -------------------------------------------------------------------------------------------------
@cli.command("import")
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--register", help="Register name (default: the file name without its extension).")
@click.option("--mapping", "mapping_file", type=click.Path(dir_okay=False),
              help="Column mapping YAML (default: a shipped mapping for a known file, else columns named like "
                   "the fields).")
@click.option("--map", "maps", multiple=True, metavar="FIELD=COLUMN", help="Map a source column to a field; COLUMN+COLUMN joins several (e.g. address=Street+Town).")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE", help="A constant value for every row.")
@click.option("--retry", "retry_register", metavar="REGISTER", help="Retry the quarantined rows of a register.")
@click.option("--quiet", is_flag=True, help="No progress bar; print only the summary line and problems count.")
def import_(file, register, mapping_file, maps, sets, retry_register, quiet):
    """Import a register FILE (CSV, XLSX, GeoJSON, GeoPackage) into the store, or --retry its quarantine."""
    from asset_map.errors import InputError
    from asset_map.registers import importer
    from asset_map.registers.mapping import Mapping, load_mapping, shipped_mapping
    from asset_map.registers.report import format_text

    settings = load_settings()
    with _progress(quiet) as progress:
        if retry_register:
            report = importer.retry(_engine(), retry_register, settings=settings, progress=progress)
        else:
            if not file:
                raise InputError("Give a FILE to import, or --retry REGISTER.")
            path = Path(file)
            if mapping_file:
                mapping = load_mapping(mapping_file)
            else:
                shipped = shipped_mapping(path.name)
                mapping = load_mapping(shipped) if shipped else Mapping()
            mapping = mapping.with_flags(maps, sets)
            report = importer.import_register(_engine(), path, register=register or path.stem, mapping=mapping,
                                              settings=settings, progress=progress)
    if quiet:
        click.echo(report.summary() + f"; {len(report.problems):,} problems")
    else:
        click.echo(format_text(report))


class _progress:
    """A tqdm bar over the import steps, on the terminal's stderr; nothing when quiet."""

    def __init__(self, quiet):
        self.quiet = quiet
        self.bar = None

    def __enter__(self):
        if self.quiet:
            return None
        from tqdm import tqdm

        from asset_map.registers.importer import STEPS

        self.bar = tqdm(total=len(STEPS), desc="import", unit="step", leave=False, disable=None)

        def step(name):
            self.bar.set_postfix_str(name)
            self.bar.update(1)
        return step

    def __exit__(self, *exc):
        if self.bar:
            self.bar.close()


@cli.group()
def quarantine():
    """Rows an import could not place, with their reasons."""


@quarantine.command("list")
@click.argument("register", required=False)
def quarantine_list(register):
    """Every quarantined row (of one REGISTER, or all) with its reasons."""
    from sqlalchemy import text

    sql = ("SELECT register, source_row, row, problems FROM quarantine "
           + ("WHERE register = :r " if register else "") + "ORDER BY register, source_row")
    with _engine().connect() as conn:
        rows = conn.execute(text(sql), {"r": register}).all()
    for reg, source_row, row, problems in rows:
        name = (row.get("fields") or {}).get("name", "")
        reasons = "; ".join(f"{p['field']} {str(p['value'])!r}: {p['reason']}" for p in problems
                            if p.get("severity") == "error")
        click.echo(f"{reg} row {source_row} {name!r}: {reasons}")
    click.echo(f"{len(rows):,} quarantined rows" + (f" in {register}" if register else ""))


@cli.command("duplicates")
@click.argument("register")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="CSV file (default: the terminal).")
def duplicates(register, output):
    """Every asset of REGISTER that looks like one of another register (same source key or UPRN, same name within
    50 m), as CSV, as the store holds them now. The import report counts them and lists the first ones."""
    import io

    from asset_map.api.csv_ import BOM
    from asset_map.registers.duplicates import cross_register_duplicates
    from asset_map.registers.report import write_duplicates_csv
    from asset_map.registers.store import get_register

    engine = _engine()
    get_register(engine, register)
    with engine.connect() as conn:
        pairs = cross_register_duplicates(conn, register)
    if output:
        with open(output, "w", encoding="utf-8", newline="") as f:
            f.write(BOM)
            write_duplicates_csv(pairs, f)
        click.echo(f"{len(pairs):,} possible duplicates of {register} in other registers: {output}", err=True)
    else:
        out = io.StringIO()
        write_duplicates_csv(pairs, out)
        click.echo(out.getvalue(), nl=False)


# -- demo ------------------------------------------------------------------------------------------------------
@cli.group()
def demo():
    """Demo data."""


@demo.command("synth")
@click.option("--areas", default=700, show_default=True, help="Number of small areas.")
@click.option("--assets", default=2000, show_default=True, help="Number of register rows (all tiers).")
@click.option("--seed", default=1, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the files (default var/synth-SEED).")
def demo_synth(areas, assets, seed, out):
    """Generate a deterministic synthetic county and load it through the same loaders as real data."""
    from asset_map import synth
    from asset_map.reference.pack import load_pack as run

    settings = load_settings()
    out = Path(out or Path(settings["VAR_DIR"]) / f"synth-{seed}")
    county = synth.generate(areas=areas, assets=assets, seed=seed, as_of=date.today())
    county.write(out)
    click.echo(f"synthetic county written to {out}")
    run(_engine(), out, progress=_print_result)


@cli.command("bootstrap")
def bootstrap():
    """What `make run` does before serving: start the database, migrate, load the reference pack (or a synthetic
    county) unless already loaded."""
    from asset_map.layers.queries import counts
    from asset_map.reference.pack import load_pack as run
    from asset_map.store.db import upgrade

    settings = load_settings()
    engine = _engine()
    upgrade(engine)
    have = counts(engine)
    pack = default_reference_dir(settings)
    if have["districts"] and have["areas_2011"] + have["areas_2021"]:
        click.echo(f"reference data already loaded ({have['districts']} districts, "
                   f"{have['areas_2011'] + have['areas_2021']:,} areas)")
    elif pack:
        click.echo(f"loading reference pack {pack}")
        run(engine, pack, progress=_print_result)
    else:
        click.echo("no reference pack found: generating a synthetic county")
        from asset_map import synth

        out = Path(settings["VAR_DIR"]) / "synth-1"
        synth.generate(areas=700, assets=2000, seed=1, as_of=date.today()).write(out)
        run(engine, out, progress=_print_result)
    _bootstrap_registers(engine, settings, pack or Path(settings["VAR_DIR"]) / "synth-1")


def _bootstrap_registers(engine, settings, folder):
    """Import the pack's registers (or the synthetic county's) that are not imported yet: the two councils' library
    lists with their shipped mapping (libraries_2023.csv lists the same libraries again, so it is left to import
    by hand; its duplicates would be reported, not merged)."""
    from sqlalchemy import text

    from asset_map.reference.pack import registers_in
    from asset_map.registers import importer

    files = [p for p in registers_in(folder) if p.name != "libraries_2023.csv"]
    with engine.connect() as conn:
        done = {r[0] for r in conn.execute(text("SELECT name FROM registers WHERE imported_at IS NOT NULL"))}
    for path in files:
        if path.stem in done:
            continue
        report = importer.import_register(engine, path, register=path.stem, settings=settings, actor="bootstrap")
        click.echo(report.summary())


# -- exports ---------------------------------------------------------------------------------------------------
@cli.command("export")
@click.argument("layer")
@click.option("--format", "fmt", type=click.Choice(["geojson", "gpkg", "csv"]),
              help="Output format (default: from the file's extension).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="File to write.")
@click.option("--district", multiple=True, help="ONS district code(s), e.g. E07000197.")
@click.option("--tier", multiple=True, help="individual, association, organisation.")
@click.option("--category", multiple=True, help="Category, e.g. community_run_library.")
@click.option("--offer", multiple=True, help="What an asset offers, e.g. buildings/space.")
@click.option("--status", multiple=True, help="open, temporarily closed, closed, withdrawn, or all.")
@click.option("--bbox", help="minLon,minLat,maxLon,maxLat (EPSG:4326).")
@click.option("--updated-since", help="ISO date or date-time.")
@click.option("--verified-within", help="Months since last verified.")
@click.option("--q", help="Text in the name.")
@click.option("--role", type=click.Choice(["public", "organiser", "officer", "admin"]), default="public",
              show_default=True, help="Whose view to export; below officer, individuals are counts only.")
@click.option("--csv-sidecar", is_flag=True, help="CSV: attribution in FILE.txt instead of leading # lines.")
def export(layer, fmt, output, role, csv_sidecar, **filters):
    """Export LAYER (assets, organisations, associations, individuals, districts, need-imd-2025,
    assets-<district code>, or all for a GeoPackage of every layer) as GeoJSON, GeoPackage or CSV."""
    import getpass

    from asset_map.api.exports import Export

    fmt = fmt or Path(output).suffix.lstrip(".").lower()
    args = {k: list(v) if isinstance(v, tuple) else v for k, v in filters.items() if v}
    job = Export.make(_engine(), layer, fmt, args, role=role, actor=f"cli:{getpass.getuser()}",
                      settings=load_settings())
    counts = job.write(output, sidecar=csv_sidecar) if fmt == "csv" else job.write(output)
    for layer_id, n in counts.items():
        click.echo(f"{layer_id}: {n:,} features")
    click.echo(f"written {output}")


@cli.command("serve")
@click.option("--host")
@click.option("--port", type=int)
@click.option("--dev", is_flag=True, help="Flask's development server with reload, instead of gunicorn.")
def serve(host, port, dev):
    """Serve the web app (gunicorn, workers and threads from settings)."""
    settings = load_settings()
    host = host or settings["HOST"]
    port = port or settings["PORT"]
    click.echo(f"asset-map serving on http://{host}:{port}")
    if dev:
        from asset_map.web import create_app

        create_app().run(host=host, port=port, debug=True)
        return
    from asset_map.web.server import run

    run(host=host, port=port, workers=settings["WORKERS"], threads=settings["THREADS"],
        max_requests=settings["MAX_REQUESTS"], preload=bool(settings["PRELOAD"]))


# -- gap report ------------------------------------------------------------------------------------------------
@cli.command("gap-report")
@click.option("--district", multiple=True, help="District code (repeat for several; none: every district).")
@click.option("--category", multiple=True, help="Asset category, e.g. library (repeat for several).")
@click.option("--offer", multiple=True, help="What assets offer, e.g. 'buildings/space' (used without --category).")
@click.option("--tier", multiple=True, type=click.Choice(["individual", "association", "organisation"]))
@click.option("--status", multiple=True, help="Asset status (default: open only; 'all' for every status).")
@click.option("--need", help="Need indicator and vintage, e.g. imd:2025 (default: the DEFAULT_NEED setting).")
@click.option("--need-classes", type=click.Choice(["deciles", "quantiles"]), default="deciles", show_default=True)
@click.option("--need-breaks", default="2,5", show_default=True, help="Deciles up to which need is high, medium.")
@click.option("--need-direction", type=click.Choice(["higher", "lower"]), default="higher", show_default=True,
              help="With --need-classes quantiles: do higher or lower scores mean more need?")
@click.option("--supply", type=click.Choice(["access", "per_1000", "distance"]), default="access",
              show_default=True, help="Supply measure the supply classes come from.")
@click.option("--catchment", type=float, default=1600, show_default=True, help="2SFCA catchment, metres.")
@click.option("--decay", type=click.Choice(["none", "linear", "gaussian"]), default="none", show_default=True)
@click.option("--role", type=click.Choice(["public", "organiser", "officer", "admin"]), default="public",
              show_default=True, help="Whose view of the assets the report shows.")
@click.option("--population-points", type=click.Path(exists=True, dir_okay=False),
              help="Points with a 'population' column (e.g. OA population-weighted centroids) for "
                   "population-weighted area centroids.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="HTML report (one self-contained file).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Results as CSV, one row per area.")
@click.option("--geojson", "geojson_path", type=click.Path(dir_okay=False), help="Results as GeoJSON.")
def gap_report(district, category, offer, tier, status, need, need_classes, need_breaks, need_direction, supply,
               catchment, decay, role, population_points, output, csv_path, geojson_path):
    """Where need is high and assets are few: a gap report as HTML (opens offline), CSV and GeoJSON."""
    from asset_map import gaps

    if not (output or csv_path or geojson_path):
        raise click.UsageError("Say where to write the report: -o FILE.html, --csv FILE and/or --geojson FILE.")
    settings = load_settings()
    args = {"district": list(district), "category": list(category), "offer": list(offer), "tier": list(tier),
            "status": list(status), "need": need, "need_classes": need_classes, "need_breaks": need_breaks,
            "need_direction": need_direction,
            "supply": supply, "catchment": str(catchment), "decay": decay}
    args = {k: v for k, v in args.items() if v not in (None, [], "")}
    request = gaps.GapRequest.from_args(args, default_need=settings["DEFAULT_NEED"])
    points = None
    if population_points:
        import geopandas as gpd

        points = gpd.read_file(population_points, engine="pyogrio")
        if "population" not in points.columns:
            raise AssetMapError(f"{population_points} has no 'population' column.")
    result = gaps.run(_engine(), request, role=role, population_points=points,
                      suppress_below=settings["SUPPRESS_BELOW"])
    for path, make in ((csv_path, gaps.csv_text), (geojson_path, gaps.geojson_text)):
        if path:
            Path(path).write_text(make(result), encoding="utf-8")
    if output:
        Path(output).write_text(gaps.standalone_html(result, settings), encoding="utf-8")
    frame = result.frame
    click.echo(f"{len(frame):,} areas, {result.inputs['assets_used']:,} assets, "
               f"{int(frame['priority'].sum()):,} priority gaps")
    for path in (output, csv_path, geojson_path):
        if path:
            click.echo(f"written {path}")


# -- users and API tokens ----------------------------------------------------------------------------------------
def _cli_actor():
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "cli"


def _read_password(password_stdin):
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
    return password


@cli.group()
def users():
    """Accounts: organisers, officers and admins. The first admin is created here; there is no default one."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["organiser", "officer", "admin"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def users_add(email, role, password_stdin):
    """Add a user; the password is asked for twice (or read from stdin)."""
    from asset_map import users as core

    user = core.add_user(_engine(), email, _read_password(password_stdin), role, actor=_cli_actor())
    click.echo(f"added {user.email} as {user.role}")


@users.command("list")
def users_list():
    """Every user with role, last sign-in and live tokens."""
    from asset_map import users as core

    rows = core.list_users(_engine())
    if not rows:
        click.echo("no users: add the first admin with `asset-map users add EMAIL --role admin`")
        return
    for r in rows:
        last = r["last_sign_in_at"].strftime("%Y-%m-%d %H:%M") if r["last_sign_in_at"] else "never"
        click.echo(f"{r['email']:<40} {r['role']:<10} last sign-in {last:<16} tokens {r['live_tokens']}")


@users.command("remove")
@click.argument("email")
def users_remove(email):
    """Remove a user and their tokens (the audit log keeps what they did)."""
    from asset_map import users as core

    user = core.remove_user(_engine(), email, actor=_cli_actor())
    click.echo(f"removed {user.email}")


@users.command("set-role")
@click.argument("email")
@click.argument("role", type=click.Choice(["organiser", "officer", "admin"]))
def users_set_role(email, role):
    """Change a user's role (takes effect on their next request)."""
    from asset_map import users as core

    user = core.set_role(_engine(), email, role, actor=_cli_actor())
    click.echo(f"{user.email} is now {user.role}")


@users.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def users_set_password(email, password_stdin):
    """Set a new password; the user's other sessions end."""
    from asset_map import users as core

    user = core.set_password(_engine(), email, _read_password(password_stdin), actor=_cli_actor())
    click.echo(f"password of {user.email} changed")


@cli.group()
def token():
    """API tokens for scripts and QGIS: sent as `Authorization: Bearer TOKEN`."""


@token.command("create")
@click.argument("email")
@click.option("--scope", type=click.Choice(["read", "export"]), default="read", show_default=True,
              help="read: the API and pages; export: also /export downloads.")
@click.option("--expires-days", type=int, help="Days until it expires (default ASSET_MAP_TOKEN_DAYS; 0: never).")
@click.option("--label", help="What the token is for, e.g. 'QGIS on the GIS team laptop'.")
def token_create(email, scope, expires_days, label):
    """Create a token for a user and print it once; only its hash is kept."""
    from asset_map import users as core

    days = load_settings()["TOKEN_DAYS"] if expires_days is None else expires_days
    secret, row = core.create_token(_engine(), email, scope=scope, expires_days=days or None, label=label,
                                    actor=_cli_actor())
    expires = row["expires_at"].strftime("%Y-%m-%d") if row["expires_at"] else "never"
    click.echo(f"token {row['id']} ({row['prefix']}...) for {row['email']}, scope {scope}, expires {expires}",
               err=True)
    click.echo("Copy it now: it cannot be shown again.", err=True)
    click.echo(secret)


@token.command("list")
@click.argument("email", required=False)
def token_list(email):
    """Tokens (all, or one user's): id, prefix, scope, state."""
    from datetime import datetime, timezone

    from asset_map import users as core

    now = datetime.now(timezone.utc)
    for t in core.list_tokens(_engine(), email):
        state = ("revoked" if t["revoked_at"] else
                 "expired" if t["expires_at"] and t["expires_at"] <= now else "live")
        expires = t["expires_at"].strftime("%Y-%m-%d") if t["expires_at"] else "never"
        used = t["last_used_at"].strftime("%Y-%m-%d %H:%M") if t["last_used_at"] else "never"
        click.echo(f"{t['id']:>5} {t['prefix']}... {t['email']:<32} {t['scope']:<7} {state:<8} "
                   f"expires {expires} last used {used} {t['label'] or ''}".rstrip())


@token.command("revoke")
@click.argument("token_id_or_prefix")
def token_revoke(token_id_or_prefix):
    """Revoke a token by id, by its prefix or by the whole token."""
    from asset_map import users as core

    row = core.revoke_token(_engine(), token_id_or_prefix, actor=_cli_actor())
    click.echo(f"token {row['id']} ({row['prefix']}...) of {row['email']} revoked")
