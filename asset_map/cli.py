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

    run(host=host, port=port, workers=settings["WORKERS"], threads=settings["THREADS"])


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
