"""HTTP load against one server on loopback: wrk when installed (the Makefile installs it), else a bounded Python
generator. Both are bounded in time; the Python one also in requests. Both return the same ``LoadResult``.

wrk is given a Lua script that walks a list of paths round-robin (one path for a plain run, several for the
soak) and prints its summary as one JSON line, so nothing depends on wrk's human-readable output.
"""

import json
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from asset_map.errors import ConfigError

HEADERS = {"Accept-Encoding": "gzip"}  # what browsers and GIS clients send; compression is part of the cost

_WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, ' ..
    '"read": %%d, "write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d}\\n', summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


@dataclass
class LoadResult:
    tool: str
    clients: int
    seconds: float
    requests: int
    errors: int          # connection errors, timeouts and answers other than 2xx/3xx
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    megabytes: float

    def summary(self):
        return (f"{self.rps:,.0f} req/s, p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, p99 {self.p99_ms:.1f} ms,"
                f" {self.errors} errors of {self.requests:,} ({self.tool}, {self.clients} clients, "
                f"{self.seconds:.0f} s)")


def wrk_path():
    return shutil.which("wrk")


def run(base_url, paths, *, clients, seconds, timeout_s=10, max_requests=None, tool=None, headers=None):
    """Load ``paths`` (round-robin) on ``base_url`` with ``clients`` connections for ``seconds``; ``headers`` are
    sent with every request besides HEADERS (e.g. an API token)."""
    headers = {**HEADERS, **(headers or {})}
    tool = tool or ("wrk" if wrk_path() else "python")
    if urlsplit(base_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        msg = f"load benchmarks run on loopback only, not against {base_url}"
        raise ConfigError(msg)
    if tool == "wrk":
        return _wrk(base_url, paths, clients=clients, seconds=seconds, timeout_s=timeout_s, headers=headers)
    return _python(base_url, paths, clients=clients, seconds=seconds, timeout_s=timeout_s,
                   max_requests=max_requests or clients * seconds * 2000, headers=headers)


def _wrk(base_url, paths, *, clients, seconds, timeout_s, headers=HEADERS):
    quoted = ", ".join(json.dumps(p) for p in paths)
    with tempfile.TemporaryDirectory(prefix="asset-map-wrk-") as tmp:
        script = Path(tmp) / "paths.lua"
        script.write_text(_WRK_SCRIPT % {"paths": quoted})
        cmd = [wrk_path(), "-t", str(min(2, clients)), "-c", str(clients), "-d", f"{seconds}s",
               "--timeout", f"{timeout_s}s", "-s", str(script)]
        for name, value in headers.items():
            cmd += ["-H", f"{name}: {value}"]
        proc = subprocess.run([*cmd, base_url + paths[0]], capture_output=True, text=True,
                              timeout=seconds + timeout_s + 30, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        msg = f"wrk failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-400:]}"
        raise ConfigError(msg)
    s = json.loads(line[len("WRKJSON "):])
    duration = s["duration_us"] / 1e6
    errors = s["connect"] + s["read"] + s["write"] + s["status"] + s["timeout"]
    return LoadResult("wrk", clients, duration, s["requests"], errors, s["requests"] / duration,
                      s["p50_us"] / 1000, s["p95_us"] / 1000, s["p99_us"] / 1000, s["max_us"] / 1000,
                      s["bytes"] / 2**20)


def _python(base_url, paths, *, clients, seconds, timeout_s, max_requests, headers=HEADERS):
    """One thread per client on a kept-alive connection; bounded by time and by a total number of requests."""
    parts = urlsplit(base_url)
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()
    latencies, counts = [], {"requests": 0, "errors": 0, "bytes": 0}

    def client(offset):
        conn = HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
        i, mine = offset, []
        while time.perf_counter() < deadline:
            with lock:
                if counts["requests"] >= max_requests:
                    break
                counts["requests"] += 1
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                res = conn.getresponse()
                body = res.read()
                ok = res.status < 400
            except OSError:
                conn.close()
                conn = HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
                body, ok = b"", False
            mine.append(time.perf_counter() - started)
            with lock:
                counts["bytes"] += len(body)
                counts["errors"] += 0 if ok else 1
        conn.close()
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + timeout_s + 5)
    elapsed = time.perf_counter() - started
    ms = np.array(latencies or [float("nan")]) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return LoadResult("python", clients, elapsed, len(latencies), counts["errors"], len(latencies) / elapsed,
                      float(p50), float(p95), float(p99), float(np.max(ms)), counts["bytes"] / 2**20)
