"""The Markdown report: a header about the machine and the server, then one table
per scenario, the exact command behind every row, and any errors in full."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024


@dataclass
class Row:
    """One line of a table: the median of ``runs`` repeats of one measurement.

    ``p50_ms``..``client_cpu_s`` are those of the repeat whose value is the median.
    """
    op: str
    size: str
    conc: str
    runs: list[float]
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_cpu_s: float | None = None
    server_peak_rss: int | None = None
    client_cpu_s: float | None = None
    errors: int = 0
    command: str = ""
    notes: list[str] = field(default_factory=list)
    first_error: str = ""

    @property
    def median(self) -> float:
        ordered = sorted(self.runs)
        return ordered[len(ordered) // 2] if ordered else 0.0


@dataclass
class Section:
    """One scenario: a title, a table (``unit`` names the value column) and free text."""
    title: str
    unit: str = "ops/s"
    rows: list[Row] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    conc_header: str = "conc"
    failed: bool = False      # the scenario could not run at all


def _run(cmd: list[str], cwd: str | None = None) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine_info(data_dir: str | None) -> list[tuple[str, str]]:
    """(label, value) pairs describing this machine."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines()
                      if l.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    info = [("CPU", model), ("cores", str(os.cpu_count())), ("RAM", mem),
            ("kernel", platform.release()), ("Python", sys.version.split()[0]),
            ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
            ("load generator", (_run(["wrk", "-v"]).splitlines() or ["wrk: not found"])[0].split(" Copyright")[0])]
    if data_dir:
        df = _run(["df", "-hT", data_dir]).splitlines()
        if len(df) == 2:
            dev, fstype, size, used, avail = df[1].split()[:5]
            info.append(("data dir disk", f"{dev} ({fstype}), {size} total, {avail} free — `{data_dir}`"))
    return info


def server_info(repo: Path) -> tuple[str, str]:
    """(version, commit) of the BleepStore checkout at ``repo``."""
    from .server import bleepstore_command
    version = _run([bleepstore_command(), "--version"]) or "unknown"
    commit = _run(["git", "rev-parse", "--short", "HEAD"], cwd=str(repo)) or "unknown"
    if _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=str(repo)):
        commit += " (with uncommitted changes)"
    return version, commit


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _mib(nbytes: int | None) -> str:
    return "n/a" if nbytes is None else f"{nbytes / MIB:,.0f}"


def render_section(section: Section) -> list[str]:
    out = [f"## {section.title}", ""]
    if section.text:
        out += section.text + [""]
    if section.rows:
        out += [f"| op | size | {section.conc_header} | {section.unit} (median) | runs | p50 ms | p99 ms "
                "| server CPU s | server peak RSS MiB | client CPU s | errors |",
                "|---|---|---|--:|---|--:|--:|--:|--:|--:|--:|"]
        for r in section.rows:
            flag = f"**{r.errors} ⚠**" if r.errors else "0"
            runs = ", ".join(f"{v:,.0f}" if v >= 100 else f"{v:,.1f}" for v in r.runs)
            out.append(f"| {r.op} | {r.size} | {r.conc} | {_fmt(r.median)} | {runs} | {_fmt(r.p50_ms, 2)} "
                       f"| {_fmt(r.p99_ms, 2)} | {_fmt(r.server_cpu_s, 2)} | {_mib(r.server_peak_rss)} "
                       f"| {_fmt(r.client_cpu_s, 2)} | {flag} |")
        out.append("")
    notes = [f"- {r.op} {r.size} {section.conc_header} {r.conc}: {n}" for r in section.rows for n in r.notes]
    if notes:
        out += ["Notes:", ""] + notes + [""]
    if section.rows:
        out += ["Commands (the median repeat of each row; request files are temporary):", "", "```"]
        out += [f"# {r.op} {r.size} {section.conc_header} {r.conc}\n{r.command}" for r in section.rows]
        out += ["```", ""]
    failed = [r for r in section.rows if r.errors]
    if failed:
        out += ["**Errors** — first non-2xx answer of each failing row:", ""]
        for r in failed:
            out += [f"- {r.op} {r.size} {section.conc_header} {r.conc}: {r.errors} errors", "", "```",
                    r.first_error.strip() or "(socket errors only: connect/read/write/timeout)", "```", ""]
    return out


def render(header: list[tuple[str, str]], server: list[tuple[str, str]], sections: list[Section],
           invocation: str) -> str:
    out = ["# BleepStore benchmark", "", f"Produced by: `{invocation}`", "", "## Machine", "",
           "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in header]
    out += ["", "## Server under test", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in server]
    out += ["", "Server CPU s and peak RSS cover the server's whole process tree (gunicorn master and "
            "workers; RSS summed, so pages shared by the forked workers count once per process), "
            "sampled every 100 ms during the measured run. Client CPU s is the load generator's own "
            "CPU time (user+system) in that run.", ""]
    errors = sum(r.errors for s in sections for r in s.rows)
    failed = [s.title for s in sections if s.failed]
    out += [f"**{errors} failed requests in total — see the Errors under the tables.**" if errors
            else "All requests succeeded (0 non-2xx answers, 0 socket errors).", ""]
    if failed:
        out += [f"**Scenarios that could not run: {', '.join(failed)}.**", ""]
    for section in sections:
        out += render_section(section)
    return "\n".join(out).rstrip() + "\n"
