"""A PostGIS cluster of the project's own, under var/, for machines where nobody configured a database.

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user and every server command runs
through ``runuser``. The port is picked once (never 5432, where a machine's own server may listen) and kept in a file,
so URLs stay stable across restarts.
"""

import glob
import os
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

    # -- facts
    @property
    def port(self):
        if not self._port_file.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self._port_file.write_text(str(_pick_port()))
        return int(self._port_file.read_text())

    def url(self, database=DATABASE):
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

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
        res = subprocess.run(self._as_owner(args), capture_output=True, text=True, check=False)
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
        self._give_to_owner(self.root, self.data, self.socket_dir, self.log)
        os.chmod(self.data, 0o700)
        self._run([str(bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                   "--encoding=UTF8", "--locale=C.UTF-8"])

    def start(self, timeout=30):
        self.init()
        if self.running():
            return
        if not _port_free(self.port):
            self._port_file.unlink()
        opts = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                f"-c max_connections=200 -c shared_buffers=256MB{'' if self.durable else ' -c fsync=off'}")
        self._run([str(_bindir() / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
                   "-w", "-t", str(timeout), "start"])
        self.ensure_database()

    def stop(self, mode="fast"):
        if self.running():
            self._run([str(_bindir() / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def destroy(self):
        self.stop(mode="immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, sql, database="postgres", check=True):
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

    def status(self):
        return {"data_dir": str(self.data), "port": self.port, "initialised": self.initialised(),
                "running": self.running(), "url": self.url()}


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
