"""The `asset-map` command. Each command is a thin adapter: parse options, call the core, print a summary.

An AssetMapError ends the command with its one-line message and exit status 1; anything else is a bug and shows its
traceback.
"""

import os
import sys
from datetime import date
from pathlib import Path

import click

from asset_map import vocabulary
from asset_map.analysis import gap_defaults
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


@cli.command("settings")
@click.option("--markdown", is_flag=True, help="The README's settings tables, in Markdown.")
def settings_command(markdown):
    """Every setting with its value here (environment over instance file over default), or the README's tables."""
    from asset_map.config import markdown_table

    if markdown:
        click.echo(markdown_table(), nl=False)
        return
    values = load_settings()
    for s in SETTINGS:
        shown = "(set)" if s.name == "SECRET_KEY" and values[s.name] else values[s.name]
        click.echo(f"{s.env}={shown}")


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
    click.echo(f"local PostGIS running: {cluster.display_url()} (passwords in {cluster.root / 'passwords.json'})")


@db.command("stop")
def db_stop():
    """Stop the local cluster."""
    from asset_map.store.db import local_cluster

    local_cluster().stop()
    click.echo("local PostGIS stopped")


@db.command("status")
def db_status():
    """Where the database is and what it holds."""
    from asset_map.maps.queries import counts
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
    from asset_map.store.db import current_revision, owner_engine, upgrade

    upgrade(owner_engine(), revision)
    click.echo(f"schema at revision {current_revision(_engine())}")


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


@load.command("geography")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--code-field", help="Field holding each area's code (detected: CED23CD, WD24CD, code, id ...).")
@click.option("--name-field", help="Field holding each area's name (detected: CED23NM, WD24NM, name ...).")
@click.option("--label", help="How pages name the geography, e.g. 'Electoral divisions' (default from NAME).")
@click.option("--crs", help="The file's CRS when it does not say, e.g. EPSG:27700 (any other is reprojected).")
def load_geography(name, file, code_field, name_field, label, crs):
    """Any set of areas (electoral divisions, wards, parishes, pilot neighbourhoods) from GeoJSON, GeoPackage or
    Shapefile, in any CRS; every asset is assigned to its areas. Loading NAME again replaces its areas."""
    from asset_map.store.geographies import load as run

    done = run(_engine(), name, file, label=label, code_field=code_field, name_field=name_field, crs=crs,
               actor=_cli_actor())
    click.echo(f"geography {done['geography']}: {done['areas']:,} areas from {done['source']} ({done['crs']}), "
               f"{done['assets_linked']:,} asset links" + (f", {done['removed']:,} areas removed"
                                                           if done["removed"] else ""))
    for note in done["notes"]:
        click.echo(f"  note: {note}")


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


@load.command("network")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--mode", type=click.Choice(["walk", "drive", "cycle"]), default="walk", show_default=True,
              help="Which network to keep: streets and paths open to walkers, roads open to drivers, or cyclists.")
@click.option("--buffer", "buffer_m", type=float, default=5000, show_default=True,
              help="Metres around the loaded districts to keep, so a route may leave a district and come back.")
def load_network(file, mode, buffer_m):
    """A street network from an OpenStreetMap extract (.osm.pbf), for gap reports by walking or driving distance."""
    from asset_map.store import network

    s = network.load(_engine(), file, mode=mode, buffer_m=buffer_m)
    click.echo(f"{mode} network: {s['nodes']:,} nodes, {s['edges']:,} edges from {s['source']} "
               f"(dated {s['source_date']}), for {len(s['districts'].split(','))} districts plus {s['buffer_m']:,.0f} m")


# -- layers ----------------------------------------------------------------------------------------------------
@cli.group()
def layers():
    """Map layer definitions (layers/*.yaml)."""


@layers.command("check")
def layers_check():
    """Validate every layer file; exit 1 listing every problem."""
    from asset_map.maps.spec import LAYERS_DIR, check_layers

    problems = check_layers(LAYERS_DIR)
    for p in problems:
        click.echo(p, err=True)
    if problems:
        sys.exit(1)
    click.echo(f"layers OK ({len(list(Path(LAYERS_DIR).glob('*.yaml')))} files)")


@layers.command("list")
@click.option("--by-category", is_flag=True, help="One layer per tier x district x category.")
@click.option("--role", type=click.Choice(vocabulary.ROLES), default="officer",
              show_default=True, help="Count what this role may see.")
def layers_list(by_category, role):
    """The asset layers (tier x district, optionally x category) with their feature counts."""
    from asset_map.maps.catalogue import asset_layers
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
    from asset_map.registers.import_report import format_text

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
    _queue_prepare(settings)


def _queue_prepare(settings):
    """The public downloads made again for the new data by the worker (`asset-map exports prepare` does it now)."""
    from asset_map import jobs

    if jobs.defer_prepare(settings):
        click.echo("queued: the public downloads made again by the worker (asset-map exports prepare does it now)")


@cli.command("import-oruk")
@click.argument("source")
@click.option("--register", help="Register name (default: oruk-<host> for an address, oruk-<file name> for a file).")
@click.option("--quiet", is_flag=True, help="No progress bar; print only the summary line and problems count.")
def import_oruk(source, register, quiet):
    """Import an Open Referral UK feed: an API address (paged through) or a JSON file of services. Services are
    grouped into assets by organisation; re-importing updates them, never duplicates."""
    from asset_map.oruk.feed import import_feed
    from asset_map.registers.import_report import format_text

    with _progress(quiet) as progress:
        report = import_feed(_engine(), source, register=register, settings=load_settings(), progress=progress)
    click.echo(report.summary() + f"; {len(report.problems):,} problems" if quiet else format_text(report))


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

        def step(name, **_counts):
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

    from asset_map.registers.duplicates import cross_register_duplicates
    from asset_map.registers.import_report import write_duplicates_csv
    from asset_map.registers.store import get_register

    engine = _engine()
    get_register(engine, register)
    with engine.connect() as conn:
        pairs = cross_register_duplicates(conn, register)
    if output:
        with open(output, "w", encoding="utf-8", newline="") as f:
            write_duplicates_csv(pairs, f, bom=True)
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
@click.option("--network-edges", default=50_000, show_default=True,
              help="Street segments of the synthetic street grid (network.osm.pbf) loaded as the walk and drive "
                   "networks; 0: none.")
def demo_synth(areas, assets, seed, out, network_edges):
    """Generate a deterministic synthetic county and load it through the same loaders as real data."""
    from asset_map import synth
    from asset_map.reference.pack import load_pack as run

    settings = load_settings()
    out = Path(out or Path(settings["VAR_DIR"]) / f"synth-{seed}")
    county = synth.generate(areas=areas, assets=assets, seed=seed, as_of=date.today())
    county.write(out)
    click.echo(f"synthetic county written to {out}")
    run(_engine(), out, progress=_print_result)
    if network_edges:
        _load_synthetic_network(_engine(), out / "network.osm.pbf", network_edges)


def _load_synthetic_network(engine, path, edges):
    """A synthetic street grid over the loaded districts (with a river and a bridge every 3 km), loaded as the walk
    and drive networks: network reports then work without a real extract, and say "synthetic" in their inputs."""
    from asset_map import synth
    from asset_map.store import network

    bounds = network.district_bbox(engine, 0)[0]
    from pyproj import Transformer

    x, y = Transformer.from_crs(4326, 27700, always_xy=True).transform([bounds[0], bounds[2]], [bounds[1], bounds[3]])
    synth.write_street_grid(synth.StreetGrid.covering((x[0], y[0], x[1], y[1]), edges), path)
    for mode in ("walk", "drive"):
        s = network.load(engine, path, mode=mode, buffer_m=1_000, actor="bootstrap",
                         source=f"synthetic street grid ({path.name})")
        click.echo(f"{mode} network: {s['edges']:,} edges from {s['source']}")


@cli.command("bootstrap")
def bootstrap():
    """What `make run` does before serving: start the database, migrate, load the reference pack (or a synthetic
    county) unless already loaded."""
    from asset_map.maps.queries import counts
    from asset_map.reference.pack import load_pack as run
    from asset_map.store.db import owner_engine, upgrade

    settings = load_settings()
    upgrade(owner_engine(settings))
    engine = _engine()
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
    _bootstrap_network(engine, settings)
    from asset_map.api import kept

    if not kept.current(engine, settings):
        _queue_prepare(settings)


def _bootstrap_network(engine, settings):
    """The walk and drive networks: from NETWORK_FILE when set, else a synthetic street grid (said so)."""
    from asset_map.store import network

    if network.info(engine, "walk") is not None:
        return
    if settings["NETWORK_FILE"]:
        for mode in ("walk", "drive"):
            s = network.load(engine, settings["NETWORK_FILE"], mode=mode, actor="bootstrap")
            click.echo(f"{mode} network: {s['edges']:,} edges from {s['source']}")
        return
    click.echo("no street network given (ASSET_MAP_NETWORK_FILE): loading a synthetic street grid, so reports by "
               "walking distance work; load a real OpenStreetMap extract with `asset-map load network FILE`")
    _load_synthetic_network(engine, Path(settings["VAR_DIR"]) / "synthetic-network.osm.pbf", 50_000)


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
@click.option("--area", multiple=True, help="An area of a loaded geography as GEOGRAPHY:CODE, e.g. divisions:D001.")
@click.option("--tier", multiple=True, type=click.Choice(vocabulary.TIERS))
@click.option("--category", multiple=True, help="Category, e.g. community_run_library.")
@click.option("--offer", multiple=True, help="What an asset offers, e.g. buildings/space.")
@click.option("--status", multiple=True, help=", ".join(vocabulary.STORED_STATUSES) + ", or all.")
@click.option("--bbox", help="minLon,minLat,maxLon,maxLat (EPSG:4326).")
@click.option("--updated-since", help="ISO date or date-time.")
@click.option("--verified-within", help="Months since last verified.")
@click.option("--q", help="Text in the name.")
@click.option("--role", type=click.Choice(vocabulary.ROLES), default="public",
              show_default=True, help="Whose view to export; below officer, individuals are counts only.")
@click.option("--csv-sidecar", is_flag=True, help="CSV: attribution in FILE.txt instead of leading # lines.")
def export(layer, fmt, output, role, csv_sidecar, **filters):
    """Export LAYER (assets, organisations, associations, individuals, districts, need-imd-2025,
    assets-<district code>, or all for a GeoPackage of every layer) as GeoJSON, GeoPackage or CSV."""
    import getpass

    from asset_map.api.exporter import Export

    fmt = fmt or Path(output).suffix.lstrip(".").lower()
    args = {k: list(v) if isinstance(v, tuple) else v for k, v in filters.items() if v}
    job = Export.make(_engine(), layer, fmt, args, role=role, actor=f"cli:{getpass.getuser()}",
                      settings=load_settings())
    counts = job.write(output, sidecar=csv_sidecar) if fmt == "csv" else job.write(output)
    for layer_id, n in counts.items():
        click.echo(f"{layer_id}: {n:,} features")
    click.echo(f"written {output}")


@cli.group("exports")
def exports_():
    """Kept public downloads (VAR_DIR/exports)."""


@exports_.command("prepare")
@click.option("--force", is_flag=True, help="Make them again even when kept for the current data.")
def exports_prepare(force):
    """Make the popular public downloads (the whole public asset layer as GeoJSON and CSV, with their gzip copies)
    for the data as it is now, at low CPU priority, where the download route finds them. The import worker does
    it after each import and checks every few minutes; this does it now."""
    from asset_map.api import kept

    def said(layer_id, fmt, path, seconds, made):
        what = f"made in {seconds:.1f} s" if made else "already kept (or being made by another process)"
        click.echo(f"{layer_id}.{fmt}: {what}: {path}")

    kept.prepare(_engine(), load_settings(), force=force, progress=said)


# -- briefings, councillors, mail, directories ------------------------------------------------------------------
def _date_option(value, name):
    from asset_map.errors import InputError

    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise InputError(f"--{name} must be a date such as 2026-11-01, got {value!r}.") from err


@cli.command("briefing")
@click.option("--geography", help="The geography, e.g. divisions (see asset-map geographies).")
@click.option("--area", "codes", multiple=True, help="An area code of the geography (repeat for several).")
@click.option("--all", "all_areas", is_flag=True, help="Every area of the geography.")
@click.option("-o", "--output", type=click.Path(file_okay=False), help="Folder for the files (and index.csv).")
@click.option("--format", "formats", multiple=True, type=click.Choice(["pdf", "html"]), help="pdf (default), html.")
@click.option("--since", help="Changes since this date (default: 31 days before --as-of).")
@click.option("--as-of", "as_of", help="The briefing's date (default today); the same date and data give the same "
              "files.")
@click.option("--role", type=click.Choice(["public", "organiser", "councillor", "officer", "admin"]),
              default="councillor", show_default=True, help="Whose view: the stale list needs a signed-in role.")
@click.option("--send-monthly", is_flag=True, help="E-mail every councillor their areas' briefings (for cron).")
@click.option("--force", is_flag=True, help="With --send-monthly: send even if already sent this month.")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Render in this many processes (e.g. the number of cores).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def briefing(geography, codes, all_areas, output, formats, since, as_of, role, send_monthly, force, jobs, quiet):
    """Briefings of areas as A4 PDFs (and printable HTML): --geography divisions --all -o DIR makes one per area;
    --send-monthly e-mails each councillor theirs (run it from cron on the 1st of the month, see the README)."""
    from tqdm import tqdm

    from asset_map.briefing import batch, councillors, data
    from asset_map.errors import InputError

    settings, engine = load_settings(), _engine()
    today = _date_option(as_of, "as-of") or date.today()
    if send_monthly:
        results = councillors.send_monthly(engine, settings, today=today, force=force)
        for email, status in results:
            click.echo(f"{email}: {status}")
        click.echo(f"{len(results)} councillor e-mails")
        return
    if not geography or not output or not (codes or all_areas):
        raise InputError("Give --geography, -o DIR and --area CODE (or --all); or --send-monthly.")
    shared = data.county(engine, settings, role=role, today=today, since=_date_option(since, "since"))
    from asset_map.store.geographies import areas

    total = len(codes) if codes else len(areas(engine, geography))
    with tqdm(total=total, desc="briefings", unit="area", disable=True if quiet else None) as bar:
        rows = batch.write_all(engine, shared, geography, output, codes=codes or None,
                               formats=tuple(formats) or ("pdf",), progress=lambda code: bar.update(1),
                               jobs=jobs)
    click.echo(f"{len(rows)} briefings written to {output} (index.csv lists them)")


@cli.command("geographies")
@click.argument("name", required=False)
def geographies_(name):
    """The loaded geographies, or the areas of geography NAME with their asset counts."""
    from asset_map.store import geographies as store

    engine = _engine()
    if name:
        for a in store.areas(engine, name, role="officer"):
            click.echo(f"{a['code']}\t{a['name']}\t{a['assets']} assets" + (f"\tdrawn by {a['drawn_by']}"
                                                                              if a["drawn_by"] else ""))
        return
    for g in store.list_geographies(engine):
        click.echo(f"{g['name']}\t{g['label']}\t{g['areas']} areas\tfrom {g['source']}")


@cli.group()
def councillors():
    """Councillors (or anyone with an account) attached to areas: they see those briefings on sign-in and are sent
    them monthly."""


@councillors.command("attach")
@click.argument("email")
@click.argument("geography")
@click.argument("codes", nargs=-1, required=True)
def councillors_attach(email, geography, codes):
    from asset_map.briefing.councillors import attach

    n = attach(_engine(), email, geography, list(codes), actor=_cli_actor())
    click.echo(f"{email}: {n} area(s) attached")


@councillors.command("detach")
@click.argument("email")
@click.argument("geography")
@click.argument("codes", nargs=-1, required=True)
def councillors_detach(email, geography, codes):
    from asset_map.briefing.councillors import detach

    n = detach(_engine(), email, geography, list(codes), actor=_cli_actor())
    click.echo(f"{email}: {n} area(s) detached")


@councillors.command("list")
def councillors_list():
    from asset_map.briefing.councillors import attachments

    for email, role, areas in attachments(_engine()):
        click.echo(f"{email} ({role}): " + ", ".join(f"{a.name} ({a.geography}:{a.code})" for a in areas))


@cli.group()
def mail():
    """E-mail waiting in the outbox (written there when ASSET_MAP_SMTP_URL is not set, or delivery failed)."""


@mail.command("outbox")
def mail_outbox():
    """List the messages waiting in the outbox."""
    from asset_map import mail as mail_

    items = mail_.outbox(load_settings())
    for item in items:
        click.echo(f"{item.path.name}\t{item.date}\t{item.to}\t{item.subject}\t{item.size:,} bytes")
    click.echo(f"{len(items)} message(s) in {mail_.outbox_dir(load_settings())}")


@mail.command("send")
@click.argument("files", nargs=-1)
def mail_send(files):
    """Send the outbox's messages (or only FILES, by name) through ASSET_MAP_SMTP_URL."""
    from asset_map import mail as mail_

    for name, status in mail_.send_outbox(load_settings(), names=set(files) or None):
        click.echo(f"{name}: {status}")


@cli.command("directory")
@click.option("--postcode", help="Centre on a postcode, e.g. 'B79 7DN'.")
@click.option("--asset", "asset_id", type=int, help="Centre on an asset by id, e.g. a library.")
@click.option("--area", help="Every asset inside an area instead: GEOGRAPHY:CODE.")
@click.option("--miles", type=float, default=1.0, show_default=True, help="Radius around the centre.")
@click.option("--title", help="Heading, e.g. 'What's on near Tamworth Library'.")
@click.option("--role", type=click.Choice(["public", "organiser", "councillor", "officer", "admin"]),
              default="public", show_default=True, help="Whose view: phone and e-mail need organiser or above.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PDF or HTML file.")
def directory(postcode, asset_id, area, miles, title, role, output):
    """A printable large-type local directory of associations and organisations near a point or in an area, by
    category, with what they offer, when verified and how to contact them (never individuals)."""
    from asset_map.briefing import directory as directory_

    settings = load_settings()
    where = directory_.Where.parse(postcode=postcode, asset=asset_id, area=area, miles=miles)
    doc = directory_.document(_engine(), settings, where, role=role, title=title)
    if output.lower().endswith(".html"):
        Path(output).write_text(doc.html, encoding="utf-8")
    else:
        Path(output).write_bytes(doc.pdf)
    click.echo(f"{doc.listed} listed ({doc.total} found) near {doc.place}: written {output}")


# -- tiles -----------------------------------------------------------------------------------------------------------


@cli.group()
def tiles():
    """The vector tiles' prepared tables and cache."""


@tiles.command("prepare")
@click.option("--seed-zoom", type=int, default=-1, show_default=True,
              help="Also render the public need, district and asset tiles of zooms 0..N into the disk cache "
                   "(-1: none).")
@click.option("--force", is_flag=True, help="Rebuild even when the tables are current.")
def tiles_prepare(seed_zoom, force):
    """Area shapes per zoom band and public asset counts per grid cell (run after loading; tiles also start it when
    they find the tables out of date), and optionally seed the cache of the low zooms."""
    import time

    from asset_map.maps import tile_prep
    from asset_map.maps import tiles as tiles_

    settings, engine = load_settings(), _engine()
    started = time.perf_counter()
    done = tile_prep.refresh(engine, stale_months=settings["STALE_MONTHS"], force=force)
    click.echo(f"area shapes: {done['shapes']:,} rows; asset cells: {done['assets']:,} rows "
               f"({time.perf_counter() - started:.1f} s; 0 means already current)")
    if seed_zoom >= 0:
        from asset_map.store.assets import AssetFilter

        cache = tiles_.TileCache(Path(settings["VAR_DIR"]) / "tiles")
        qs = [tiles_.TileQuery.from_args(engine, "need", {}), tiles_.TileQuery.from_args(engine, "districts", {}),
              tiles_.TileQuery(tiles_.layer("assets"), (), AssetFilter())]
        n = tile_prep.seed(engine, cache, qs, max_zoom=seed_zoom, stale_months=settings["STALE_MONTHS"])
        click.echo(f"seeded {n:,} tiles of zooms 0-{seed_zoom}")


@cli.command("serve")
@click.option("--host")
@click.option("--port", type=int)
@click.option("--dev", is_flag=True, help="Flask's development server with reload, instead of gunicorn.")
@click.option("--no-worker", is_flag=True, help="Do not start the background import worker beside the server "
                                                "(run `asset-map worker` elsewhere).")
def serve(host, port, dev, no_worker):
    """Serve the web app (gunicorn, workers and threads from settings), with a background import worker."""
    from asset_map import jobs

    settings = load_settings()
    host = host or settings["HOST"]
    port = port or settings["PORT"]
    # Flask's reloader runs this command again in a child process: one worker, started by the parent, is enough.
    reloaded = os.environ.get("WERKZEUG_RUN_MAIN") == "true"
    worker = None if no_worker or reloaded else jobs.spawn_worker()
    click.echo(f"asset-map serving on http://{host}:{port}")
    try:
        if dev:
            from asset_map.web import create_app

            create_app().run(host=host, port=port, debug=True)
            return
        from asset_map.web.server import run

        # A download holds its thread while it is sent and the worker still accepts the map's requests, which then
        # wait behind its other threads: the extra threads are for downloads (EXPORT_SLOTS bounds them).
        threads = settings["THREADS"] + min(max(0, settings["EXPORT_THREADS"]), max(1, settings["EXPORT_SLOTS"]))
        run(host=host, port=port, workers=settings["WORKERS"], threads=threads,
            max_requests=settings["MAX_REQUESTS"], max_mb=settings["WORKER_MAX_MB"],
            preload=bool(settings["PRELOAD"]))
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)


@cli.command("worker")
def worker():
    """Run imports queued from the browser (a procrastinate worker on the 'imports' queue) until stopped."""
    from asset_map import jobs

    click.echo("asset-map worker: waiting for imports")
    jobs.work(load_settings())


# -- gap report ------------------------------------------------------------------------------------------------
@cli.command("gap-report")
@click.option("--district", multiple=True, help="District code (repeat for several; none: every district).")
@click.option("--category", multiple=True, help="Asset category, e.g. library (repeat for several).")
@click.option("--offer", multiple=True, help="What assets offer, e.g. 'buildings/space' (used without --category).")
@click.option("--tier", multiple=True, type=click.Choice(vocabulary.TIERS))
@click.option("--status", multiple=True, help="Asset status (default: open only; 'all' for every status).")
@click.option("--need", help="Need indicator and vintage, e.g. imd:2025 (default: the DEFAULT_NEED setting).")
@click.option("--need-classes", type=click.Choice(gap_defaults.NEED_METHODS), default=gap_defaults.NEED_METHOD,
              show_default=True)
@click.option("--need-breaks", default=",".join(str(b) for b in gap_defaults.NEED_BREAKS), show_default=True,
              help="Deciles up to which need is high, medium.")
@click.option("--need-direction", type=click.Choice(gap_defaults.NEED_DIRECTIONS), default=gap_defaults.NEED_DIRECTION,
              show_default=True, help="With --need-classes quantiles: do higher or lower scores mean more need?")
@click.option("--supply", type=click.Choice(gap_defaults.SUPPLY_MEASURES), default=gap_defaults.SUPPLY_MEASURE,
              show_default=True, help="Supply measure the supply classes come from.")
@click.option("--distance", type=click.Choice(gap_defaults.DISTANCES), default=gap_defaults.DISTANCE,
              show_default=True, help="Measure distances in a straight line or along the loaded street network.")
@click.option("--catchment", default=f"{gap_defaults.CATCHMENT_M:g}", show_default=True,
              help="Catchment: metres (1600) or minutes (15min) at --speed.")
@click.option("--speed", type=float, help="km/h that turns a catchment in minutes into metres (default: walk 4.8, "
                                          "cycle 16, drive 30).")
@click.option("--decay", type=click.Choice(gap_defaults.DECAYS), default=gap_defaults.DECAY, show_default=True)
@click.option("--role", type=click.Choice(vocabulary.ROLES), default="public",
              show_default=True, help="Whose view of the assets the report shows.")
@click.option("--population-points", type=click.Path(exists=True, dir_okay=False),
              help="Points with a 'population' column (e.g. OA population-weighted centroids) for "
                   "population-weighted area centroids.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="HTML report (one self-contained file).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Results as CSV, one row per area.")
@click.option("--geojson", "geojson_path", type=click.Path(dir_okay=False), help="Results as GeoJSON.")
def gap_report(district, category, offer, tier, status, need, need_classes, need_breaks, need_direction, supply,
               distance, catchment, speed, decay, role, population_points, output, csv_path, geojson_path):
    """Where need is high and assets are few: a gap report as HTML (opens offline), CSV and GeoJSON."""
    from asset_map import gaps

    if not (output or csv_path or geojson_path):
        raise click.UsageError("Say where to write the report: -o FILE.html, --csv FILE and/or --geojson FILE.")
    settings = load_settings()
    args = {"district": list(district), "category": list(category), "offer": list(offer), "tier": list(tier),
            "status": list(status), "need": need, "need_classes": need_classes, "need_breaks": need_breaks,
            "need_direction": need_direction,
            "supply": supply, "catchment": str(catchment), "decay": decay, "distance": distance,
            "speed": None if speed is None else str(speed)}
    args = {k: v for k, v in args.items() if v not in (None, [], "")}
    request = gaps.GapRequest.from_args(args, default_need=settings["DEFAULT_NEED"])
    points = None
    if population_points:
        import geopandas as gpd

        points = gpd.read_file(population_points, engine="pyogrio")
        if "population" not in points.columns:
            raise AssetMapError(f"{population_points} has no 'population' column.")
    from asset_map import disclosure

    result = gaps.run(_engine(), request, role=role, population_points=points,
                      suppress_below=disclosure.method(settings), settings=settings)
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
    """Accounts: organisers, councillors, officers and admins. The first admin is created here; there is no default
    one."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(vocabulary.ACCOUNT_ROLES), required=True)
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
@click.argument("role", type=click.Choice(vocabulary.ACCOUNT_ROLES))
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
@click.option("--scope", type=click.Choice(["read", "export", "write"]), default="read", show_default=True,
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


# -- people's rights and retention -------------------------------------------------------------------------------
@cli.group()
def people():
    """The rights of a person a register records: find them, export everything held (subject access), erase them.
    Each is written to the audit log with asset ids and counts, never the personal data."""


@people.command("find")
@click.option("--email", help="The person's e-mail address (exact, any case).")
@click.option("--name", help="The person's name (exact, any case); with --postcode.")
@click.option("--postcode", help="The postcode stored with the name.")
@click.option("--source-key", help="The register's own key for the person.")
def people_find(email, name, postcode, source_key):
    """Individuals matching an e-mail, a name and postcode, or a source key: their asset ids."""
    from asset_map import people as core

    found = core.find(_engine(), email=email, name=name, postcode=postcode, source_key=source_key,
                      actor=_cli_actor())
    if not found:
        click.echo("Nobody found.")
        return
    for p in found:
        if p["id"] is None:
            click.echo(f"offer {p['offer_id']}  {p['register']}  {p['category']}  {p['district_code'] or ''}  held "
                       f"(export or erase it with --offer {p['offer_id']})")
            continue
        state = f"erased {p['erased_at']:%Y-%m-%d}" if p["erased_at"] else "held"
        click.echo(f"{p['id']:>8}  {p['register']}  row {p['source_row']}  {p['category']}  "
                   f"{p['district_code'] or ''}  {state}")


@people.command("export")
@click.argument("asset_ids", nargs=-1, type=int)
@click.option("--offer", "offer_ids", type=int, multiple=True, help="A waiting offer's id (from find); repeatable.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the JSON here (default: stdout).")
def people_export(asset_ids, offer_ids, output):
    """Everything held about the person with these asset ids, in every table, as JSON (a subject access request)."""
    import json

    from asset_map import people as core

    doc = json.dumps(core.export(_engine(), asset_ids, offer_ids=offer_ids, actor=_cli_actor()), indent=2,
                     ensure_ascii=False)
    if output:
        Path(output).write_text(doc + "\n", encoding="utf-8")
        click.echo(f"written {output}", err=True)
    else:
        click.echo(doc)


@people.command("erase")
@click.argument("asset_ids", nargs=-1, type=int)
@click.option("--offer", "offer_ids", type=int, multiple=True, help="A waiting offer's id (from find); repeatable.")
@click.option("--reason", required=True, help="Why, for the audit log (e.g. 'erasure request 2026-11-30').")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def people_erase(asset_ids, offer_ids, reason, yes):
    """Erase these individuals: personal fields, quarantined rows, saved reports' rows and kept files. All or
    nothing: an unknown id changes nothing."""
    from asset_map import people as core

    if not yes:
        click.confirm(f"Erase {len(asset_ids)} individual(s) and {len(offer_ids)} waiting offer(s)? This cannot be "
                      "undone", abort=True)
    settings = load_settings()
    done = core.erase(_engine(), asset_ids, offer_ids=offer_ids, reason=reason, actor=_cli_actor(),
                      files_dir=Path(settings["VAR_DIR"]) / "tmp")
    click.echo(f"erased {len(done['erased'])} individual(s): {done['quarantine_rows']} quarantined row(s), "
               f"{done['report_rows']} report entr(ies), {done['files']} file(s); {len(done['offers'])} waiting "
               "offer(s)")


@cli.group()
def retention():
    """How long quarantine rows, import reports and withdrawn assets are kept (RETAIN_* settings)."""


@retention.command("apply")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
def retention_apply(dry_run):
    """Remove what is older than the RETAIN_* settings allow, and report it. Run it from cron or a systemd timer."""
    from asset_map import retention as core

    removed = core.apply(_engine(), load_settings(), actor=_cli_actor(), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for what, n in removed.items():
        click.echo(f"{verb} {n:>7,} {what.replace('_', ' ')}")
