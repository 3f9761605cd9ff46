"""What a benchmark run leaves behind: BENCHMARKS.md for people, benchmarks.json for comparing commits, and the
comparison itself."""

import json
import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from asset_map.tools.bench.harness import format_value, ratio
from asset_map.config import PROJECT_DIR

SCHEMA = 1


def machine(versions=None):
    """The facts a figure depends on: CPU, cores, memory, load at the start, software versions."""
    info = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "memory_gib": None,
            "load_average": None, "os": platform.platform(), "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
        info["load_average"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    try:
        import pyogrio

        info["gdal"] = pyogrio.__gdal_version_string__
    except ImportError:
        pass
    info.update(versions or {})
    return info


def git_commit(directory=PROJECT_DIR):
    def git(*args):
        return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True,
                              check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return None
    dirty = [ln for ln in git("status", "--porcelain").splitlines()
             if not ln.endswith(("BENCHMARKS.md", "benchmarks.json"))]
    return commit + ("-dirty" if dirty else "")


def as_json(scale, results, versions, seconds, command, started=None):
    started = started or datetime.now(timezone.utc)
    figures = []
    for res in results:
        for fig in res.figures:
            figures.append({**fig.as_dict(), "module": res.name, "ratio": ratio(fig)})
    return {
        "schema": SCHEMA, "scale": scale, "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": git_commit(),
        "command": command, "seconds": round(seconds, 1), "machine": machine(versions),
        "modules": [{"name": r.name, "status": r.status, "seconds": round(r.seconds, 1), "error": r.error,
                     "notes": list(r.notes), "figures": len(r.figures)} for r in results],
        "figures": figures,
    }


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _met(value):
    return {True: "yes", False: "**no**", None: "-"}[value]


def markdown(data):
    """BENCHMARKS.md from the JSON of a run."""
    m = data["machine"]
    failed = [mod for mod in data["modules"] if mod["status"] != "ok"]
    lines = [
        "# Benchmarks", "",
        f"Scale **{data['scale']}**, run {data['date']} on commit `{data['commit']}`; {len(data['modules'])} modules "
        f"({len(failed)} failed), {len(data['figures'])} figures, {data['seconds']:.0f} s in all.", "",
        "Every figure is measured against a reference in the same run on the same machine (the ratio is value / "
        "reference), because absolute numbers on a shared 2-core machine move from run to run.", "",
        "## Commands", "",
        "```sh",
        f"make bench BENCH_SCALE={data['scale']}        # = {data['command']}",
        f"python -m asset_map.tools.bench --scale {data['scale']} --only load   # one area",
        "python -m asset_map.tools.bench compare OLD.json NEW.json     # compare two runs' benchmarks.json",
        "```", "",
        "## Machine", "",
        "| | |", "|---|---|",
        f"| CPU | {_cell(m.get('cpu'))} |", f"| Cores | {m.get('cores')} |",
        f"| Memory | {m.get('memory_gib')} GiB |", f"| Load average at start | {m.get('load_average')} |",
        f"| OS | {_cell(m.get('os'))} |", f"| Python | {m.get('python')} |",
        f"| PostgreSQL | {m.get('postgresql', '-')} |", f"| PostGIS | {m.get('postgis', '-')} |",
        f"| GDAL (pyogrio) | {m.get('gdal', '-')} |", "",
        "## Modules", "",
        "| Module | Status | Time | Figures | Error |", "|---|---|---|---|---|",
    ]
    for mod in data["modules"]:
        lines.append(f"| {mod['name']} | {mod['status']} | {mod['seconds']:.0f} s | {mod['figures']} | "
                     f"{_cell(mod['error'] or '')} |")
    areas = list(dict.fromkeys(f["area"] for f in data["figures"]))
    for area in areas:
        lines += ["", f"## {area}", "",
                  "| Figure | Value | Reference | Ratio | Target | Met | Notes |",
                  "|---|---|---|---|---|---|---|"]
        for f in data["figures"]:
            if f["area"] != area:
                continue
            ref = f"{_cell(f['reference'])}: {format_value(f['reference_value'])}" if f["reference"] else "-"
            r = f"{f['ratio']:.2f}" if f["ratio"] is not None else "-"
            lines.append(f"| {_cell(f['name'])} | {format_value(f['value'])} {f['unit']} | {ref} | {r} | "
                         f"{_cell(f['target'] or '-')} | {_met(f['met'])} | {_cell(f['notes'] or '')} |")
    notes = [(mod["name"], n) for mod in data["modules"] for n in mod["notes"]]
    if notes or failed:
        lines += ["", "## Notes", ""]
        lines += [f"- **{name}**: {n}" for name, n in notes]
        lines += [f"- **{mod['name']}** failed: {mod['error']}" for mod in failed]
    missed = [f for f in data["figures"] if f["met"] is False]
    lines += ["", "## Targets missed", ""]
    lines += [f"- [{f['area']}] {f['name']}: {format_value(f['value'])} {f['unit']}, target {f['target']}"
              for f in missed] or ["None."]
    return "\n".join(lines) + "\n"


def write(data, out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "benchmarks.json").write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    (out_dir / "BENCHMARKS.md").write_text(markdown(data), encoding="utf-8")
    return out_dir / "BENCHMARKS.md", out_dir / "benchmarks.json"


def compare(old, new):
    """Lines comparing two runs' figures, matched by area and name: values, change, ratios, targets."""
    def key(f):
        return (f["area"], f["name"])

    before = {key(f): f for f in old["figures"]}
    after = {key(f): f for f in new["figures"]}
    lines = [f"old: {old['commit']} {old['date']} ({old['scale']}); new: {new['commit']} {new['date']} "
             f"({new['scale']})",
             "| Area | Figure | Old | New | Change | Old ratio | New ratio | Met (old -> new) |",
             "|---|---|---|---|---|---|---|---|"]
    for k in list(dict.fromkeys([*before, *after])):
        o, n = before.get(k), after.get(k)
        if o and n:
            change = f"{(n['value'] - o['value']) / o['value'] * 100:+.1f} %" if o["value"] else "-"
        else:
            change = "only old" if o else "only new"
        cells = [format_value(f["value"]) + " " + f["unit"] if f else "-" for f in (o, n)]
        ratios = [f"{f['ratio']:.2f}" if f and f.get("ratio") is not None else "-" for f in (o, n)]
        met = " -> ".join(_met(f["met"]) if f else "-" for f in (o, n))
        lines.append(f"| {k[0]} | {_cell(k[1])} | {cells[0]} | {cells[1]} | {change} | {ratios[0]} | {ratios[1]} "
                     f"| {met} |")
    return lines
