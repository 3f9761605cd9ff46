"""A PostGIS cluster of the project's own, under var/, for machines where nobody configured a database.

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user and every server command runs
through ``runuser``. The port is picked once (never 5432, where a machine's own server may listen) and kept in a file,
so URLs stay stable across restarts.

Nothing is trusted: connections over TCP need a password (scram-sha-256), the Unix socket only takes the server's
own system user (peer). The superuser, the owner role that runs migrations and the app's role have random passwords
kept in ``passwords.json`` beside the data (mode 0600). A cluster made before this (``trust``) is converted when it
starts, keeping its data.
"""

import glob
import json
import os
import secrets
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

from asset_map.errors import ConfigError, DatabaseUnavailable

DATABASE = "asset_map"
SUPERUSER = "postgres"
INSTALL_HINT = ("sudo apt-get install -y --no-install-recommends postgresql postgresql-15-postgis-3  "
                "(or your platform's PostgreSQL and PostGIS packages)")


def _bindir():
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if out and Path(out, "initdb").exists():
            return Path(out)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    msg = f"PostgreSQL server programs (initdb, pg_ctl) were not found. Install them: {INSTALL_HINT}"
    raise ConfigError(msg)


def postgis_installed():
    bindir = _bindir()
    share = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True,
                           check=False).stdout.strip()
    return bool(share) and bool(glob.glob(f"{share}/extension/postgis.control"))


def shared_buffers_mb():
    """PostgreSQL's buffers for the project's own cluster: an eighth of the machine's memory, from 128 MB to 2 GB.
    256 MB held a fraction of England's tile tables and assets (1.5 GB in all), so the first tiles of a view read
    their pages from the OS each time (a zoom 11 tile: 20 ms instead of 5)."""
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(128, min(2048, total_mb // 8))


def _port_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port(start=54329):
    for port in range(start, start + 200):
        if port != 5432 and _port_free(port):
            return port
    msg = f"No free TCP port for the local PostGIS cluster between {start} and {start + 199}."
    raise ConfigError(msg)


class Cluster:
    """One PostgreSQL data directory with its port, socket and log beside it."""

    def __init__(self, root, *, durable=True):
        self.root = Path(root).resolve()
        # A throwaway cluster (tests, benchmarks) need not survive a power cut, so it skips fsync; the project's own
        # cluster holds people's registers and must.
        self.durable = durable
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.socket_dir = self.root / "run"
        self._port_file = self.root / "port"
        self._passwords_file = self.root / "passwords.json"
        self._roles_marker = self.root / "roles.ok"

    # -- facts
    @property
    def port(self):
        if not self._port_file.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self._port_file.write_text(str(_pick_port()))
        return int(self._port_file.read_text())

    def passwords(self):
        """{role: password}, made on first use and kept (0600) beside the data."""
        if self._passwords_file.exists():
            return json.loads(self._passwords_file.read_text())
        from asset_map.store import roles

        self.root.mkdir(parents=True, exist_ok=True)
        made = {r: secrets.token_urlsafe(24) for r in (SUPERUSER, roles.OWNER, roles.APP)}
        fd = os.open(self._passwords_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(made, fh)
        return made

    def url(self, database=DATABASE, role=SUPERUSER):
        """A URL with the role's password: the superuser's (tests, administration), ``roles.OWNER`` (migrations) or
        ``roles.APP`` (the app)."""
        return f"postgresql+psycopg://{role}:{self.passwords()[role]}@127.0.0.1:{self.port}/{database}"

    def initialised(self):
        return (self.data / "PG_VERSION").exists()

    def running(self):
        if not self.initialised():
            return False
        res = self._run([str(_bindir() / "pg_ctl"), "-D", str(self.data), "status"], check=False)
        return res.returncode == 0

    # -- actions
    def _as_owner(self, args):
        if os.geteuid() == 0:
            return ["runuser", "-u", SUPERUSER, "--", *args]
        return args

    def _run(self, args, check=True):
        env = dict(os.environ, PGPASSWORD=self.passwords()[SUPERUSER]) if self.root.exists() else None
        res = subprocess.run(self._as_owner(args), capture_output=True, text=True, check=False, env=env)
        if check and res.returncode != 0:
            msg = f"{Path(args[0]).name} failed: {(res.stderr or res.stdout).strip()[-800:]}"
            raise ConfigError(msg)
        return res

    def _give_to_owner(self, *paths):
        if os.geteuid() != 0:
            return
        try:
            pw = pwd.getpwnam(SUPERUSER)
        except KeyError as err:
            msg = f"Running as root needs a '{SUPERUSER}' system user to own the cluster. Install: {INSTALL_HINT}"
            raise ConfigError(msg) from err
        for p in paths:
            os.chown(p, pw.pw_uid, pw.pw_gid)
        # The postgres user must be able to walk down to the data directory.
        for parent in self.root.parents:
            mode = parent.stat().st_mode
            if not mode & 0o001:
                msg = (f"The postgres user cannot reach {self.root}: {parent} is not searchable by others. "
                       f"Set ASSET_MAP_VAR_DIR to a directory it can reach.")
                raise ConfigError(msg)

    def init(self):
        if self.initialised():
            return
        bindir = _bindir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        self.log.touch()
        pwfile = self.root / "initdb.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.passwords()[SUPERUSER] + "\n")
        self._give_to_owner(self.root, self.data, self.socket_dir, self.log, pwfile)
        os.chmod(self.data, 0o700)
        try:
            self._run([str(bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth-host=scram-sha-256",
                       "--auth-local=peer", f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C.UTF-8"])
        finally:
            pwfile.unlink(missing_ok=True)

    def _trusting(self):
        hba = self.data / "pg_hba.conf"
        try:
            lines = hba.read_text().splitlines()
        except PermissionError:
            lines = self._run(["cat", str(hba)]).stdout.splitlines()
        return any(line.split()[-1:] == ["trust"] for line in lines if line.strip() and not line.startswith("#"))

    def _secure(self):
        """A cluster made with ``trust`` (before issue 12): give the superuser its password while trust still lets
        us in, then allow only password (TCP) and peer (socket) connections and reload. The data is untouched."""
        if not self._trusting():
            return
        password = self.passwords()[SUPERUSER].replace("'", "''")
        self.psql(f"ALTER ROLE {SUPERUSER} PASSWORD '{password}'")
        hba = ("# asset-map: no trust. Password over TCP, the server's own system user over the socket.\n"
               "local all all peer\n"
               "host all all 127.0.0.1/32 scram-sha-256\n"
               "host all all ::1/128 scram-sha-256\n")
        tmp = self.root / "pg_hba.conf.new"
        tmp.write_text(hba)
        self._give_to_owner(tmp)
        self._run(["cp", str(tmp), str(self.data / "pg_hba.conf")])
        tmp.unlink()
        self._run([str(_bindir() / "pg_ctl"), "-D", str(self.data), "reload"])

    def start(self, timeout=30):
        self.init()
        if self.running():
            return
        if not _port_free(self.port):
            self._port_file.unlink()
        opts = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                f"-c max_connections=200 -c shared_buffers={shared_buffers_mb()}MB"
                f"{'' if self.durable else ' -c fsync=off'}")
        self._run([str(_bindir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
                   "-w", "-t", str(timeout), "start"])
        self._secure()
        self.ensure_database()
        # The project's own cluster gets the owner and app roles; a throwaway one (tests, benchmarks) is used by
        # its superuser alone and is gone when they end.
        if self.durable and not self._roles_marker.exists():
            self.ensure_roles()

    def stop(self, mode="fast"):
        if self.running():
            self._run([str(_bindir() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def destroy(self):
        self.stop(mode="immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql, database="postgres", check=True):
        # Over TCP with the superuser's password (PGPASSWORD, set by _run).
        return self._run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database,
                          "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=check)

    def ensure_database(self, name=DATABASE):
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").stdout.strip()
        if not exists:
            self.psql(f'CREATE DATABASE "{name}"')
        res = self.psql("CREATE EXTENSION IF NOT EXISTS postgis", database=name, check=False)
        if res.returncode != 0:
            msg = f"PostGIS is not installed for this PostgreSQL. Install it: {INSTALL_HINT}"
            raise ConfigError(msg)

    def ensure_roles(self, name=DATABASE):
        """The owner and app roles (asset_map.store.roles) with their passwords; tables made before them pass to
        the owner. Idempotent; run when the project's own cluster starts."""
        from asset_map.store import roles

        pw = self.passwords()
        for statement in roles.create_sql(name, owner_password=pw[roles.OWNER], app_password=pw[roles.APP]) + \
                roles.adopt_sql():
            self.psql(statement, database=name)
        self._roles_marker.write_text("ok\n")

    def status(self):
        return {"data_dir": str(self.data), "port": self.port, "initialised": self.initialised(),
                "running": self.running(), "url": self.display_url()}

    def display_url(self, database=DATABASE):
        """The app's URL without its password (passwords.json holds it), for messages."""
        from asset_map.store import roles

        return f"postgresql://{roles.APP}@127.0.0.1:{self.port}/{database}"


def wait_until_accepting(url, timeout=10.0):
    """Used after start: a just-started server can refuse connections for a moment."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(plain, connect_timeout=2).close()
            return
        except psycopg.OperationalError as err:
            if time.monotonic() > deadline:
                msg = "The database did not accept connections in time."
                raise DatabaseUnavailable(msg) from err
            time.sleep(0.2)
