"""Run the load generator over a file of presigned request lines.

``run_wrk`` runs wrk with ``wrk_script.lua``; ``run_head`` runs ``bench.headload``
(HEAD only, which wrk cannot do). Callers pass a file made by ``write_paths``.
Both return a ``WrkResult`` parsed from the ``BENCH_JSON`` line the generator
prints, plus the CPU time the generator process used (its rusage).
"""
from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

SCRIPT = Path(__file__).resolve().parent / "wrk_script.lua"
INSTALL_HINT = "wrk is not installed: run `apt-get update && apt-get install -y wrk` (see bench/README.md)"


def require_wrk() -> str:
    """Path of the wrk binary, or exit with a message that says how to install it."""
    path = shutil.which("wrk")
    if not path:
        raise SystemExit(f"bench: {INSTALL_HINT}")
    return path


def write_paths(file: Path, urls) -> int:
    """Write the path+query of each presigned URL, one a line; returns how many."""
    n = 0
    with open(file, "w") as f:
        for url in urls:
            parts = urlsplit(url)
            f.write(f"{parts.path}?{parts.query}\n")
            n += 1
    return n


@dataclass
class WrkResult:
    """One wrk run, as reported by the Lua done() callback."""
    command: str
    duration_s: float
    requests: int
    non2xx: int
    socket_errors: int
    wraps: int
    latency_us: dict
    first_error: str
    client_cpu_s: float
    raw: dict = field(repr=False)

    @property
    def ops(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors

    def percentile_ms(self, p: str) -> float:
        return self.latency_us["percentiles"][p] / 1000.0


def wrk_command(endpoint: str, paths_file: Path, method: str, body_size: int, threads: int,
                connections: int, duration: float, timeout: float = 30.0) -> list[str]:
    return [require_wrk(), f"-t{threads}", f"-c{connections}", f"-d{duration:g}s",
            f"--timeout={timeout:g}s", "-s", str(SCRIPT), endpoint, "--",
            str(paths_file), method, str(body_size), str(threads)]


def run_wrk(endpoint: str, paths_file: Path, method: str, body_size: int, threads: int,
            connections: int, duration: float) -> WrkResult:
    """Run wrk once; raises RuntimeError (with wrk's output) when it does not report."""
    threads = max(1, min(threads, connections))
    cmd = wrk_command(endpoint, paths_file, method, body_size, threads, connections, duration)
    return _run(cmd, duration)


def run_head(endpoint: str, paths_file: Path, connections: int, duration: float) -> WrkResult:
    """HEAD load with ``bench.headload`` (wrk cannot parse HEAD responses: wg/wrk#198)."""
    cmd = [sys.executable, "-m", "bench.headload", endpoint, str(paths_file),
           f"-c{connections}", f"-d{duration:g}"]
    return _run(cmd, duration)


def _run(cmd: list[str], duration: float) -> WrkResult:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120,
                          cwd=SCRIPT.parent.parent)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"load generator failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    data = json.loads(line[len("BENCH_JSON "):])
    errs = data["errors"]
    shown = shlex.join(cmd).replace(str(SCRIPT), os.path.relpath(SCRIPT, SCRIPT.parent.parent))
    return WrkResult(
        command=shown.replace(sys.executable, "python"), duration_s=data["duration_us"] / 1e6,
        requests=data["requests"], non2xx=data["lua"]["non2xx"],
        socket_errors=errs["connect"] + errs["read"] + errs["write"] + errs["timeout"],
        wraps=data["lua"]["wraps"], latency_us=data["latency_us"], first_error=data["first_error"],
        client_cpu_s=cpu, raw=data)
