"""Command line of the BleepStore benchmark: ``python -m bench [options]``.

Starts BleepStore on a fresh temporary data directory (or uses ``--endpoint``, or
with ``--nodes N`` starts N nodes on PostgreSQL behind nginx), runs the selected
scenarios, prints a Markdown report (and writes it to ``--output``), and stops
the server.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from . import report
from .cluster import DEFAULT_DATABASE_URL, Cluster, ClusterSampler, cpu_section
from .report import Section
from .scenarios import SSE_MODES, Bench, Options, parse_size
from .server import REPO, EmbeddedServer, ProcessSampler, Target
from .wrk import require_wrk

SCENARIOS = ("small", "large", "list", "versions", "startup", "multipart", "sse")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of " + ",".join(SCENARIOS))
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 2 s runs, 1 repeat, 64 MiB large objects, 2,000-key list bucket "
                         "(explicit options still win)")
    ap.add_argument("--duration", type=float, help="seconds per load run [10; quick 2]")
    ap.add_argument("--repeat", type=int, help="repeats per measurement, median reported [3; quick 1]")
    ap.add_argument("--small-sizes", default="1K,64K", help="object sizes for the small scenario")
    ap.add_argument("--concurrency", default="1,16", help="connections for small and list runs")
    ap.add_argument("--ops", default="PUT,GET,HEAD,DELETE", help="small-object operations")
    ap.add_argument("--large-sizes", help="object sizes for the large scenario [256M,1G; quick 64M]")
    ap.add_argument("--list-keys", type=int, help="keys in the list bucket [10000; quick 2000]")
    ap.add_argument("--sse-size", help="object size for the sse scenario [1G; quick 64M]")
    ap.add_argument("--sse-modes", default="none,SSE-S3,SSE-C",
                    help="encryption modes for the sse scenario, of none,SSE-S3,SSE-KMS,SSE-C")
    ap.add_argument("--list-page", type=int, default=1000, help="MaxKeys per list request")
    ap.add_argument("--max-urls", type=int, default=60_000, help="cap on presigned URLs per PUT/DELETE run")
    ap.add_argument("--workers", type=int, default=2, help="gevent workers of the embedded server")
    ap.add_argument("--data-parent", help="parent directory of the temporary data directory [system temp]")
    ap.add_argument("--endpoint", help="measure this S3 server instead of starting BleepStore")
    ap.add_argument("--access-key", default="bleepstore")
    ap.add_argument("--secret-key", default="bleepstore-secret")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--server-pid", type=int, help="with --endpoint: pid of the server to sample (its tree)")
    ap.add_argument("--nodes", type=int,
                    help="start N BleepStore nodes (--workers each) on a fresh PostgreSQL database and one "
                         "shared data directory, behind nginx (deploy/nginx.conf), and measure through nginx")
    ap.add_argument("--database-url", default=DEFAULT_DATABASE_URL,
                    help="with --nodes: admin URL of the PostgreSQL server to create the database on")
    ap.add_argument("--output", help="also write the report to this file")
    args = ap.parse_args(argv)
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    bad_modes = {m.strip() for m in args.sse_modes.split(",")} - set(SSE_MODES)
    if bad_modes:
        ap.error(f"unknown --sse-modes: {', '.join(sorted(bad_modes))} (known: {', '.join(SSE_MODES)})")
    if args.nodes is not None and (args.nodes < 1 or args.endpoint):
        ap.error("--nodes needs N >= 1 and cannot be combined with --endpoint")
    return args


def options(args: argparse.Namespace) -> Options:
    q = args.quick
    pick = lambda value, full, quick: value if value is not None else (quick if q else full)  # noqa: E731
    return Options(
        duration=pick(args.duration, 10.0, 2.0), repeat=pick(args.repeat, 3, 1),
        small_sizes=[parse_size(s) for s in args.small_sizes.split(",")],
        concurrency=[int(c) for c in args.concurrency.split(",")],
        ops=[o.strip().upper() for o in args.ops.split(",")],
        large_sizes=[parse_size(s) for s in pick(args.large_sizes, "256M,1G", "64M").split(",")],
        list_keys=pick(args.list_keys, 10_000, 2_000), list_page=args.list_page,
        max_urls=args.max_urls, workers=args.workers, data_parent=args.data_parent,
        sse_size=parse_size(pick(args.sse_size, "1G", "64M")),
        sse_modes=[m.strip() for m in args.sse_modes.split(",") if m.strip()])


def guarded(name: str, run) -> Section:
    """Run one scenario; a failure in its setup becomes a flagged section, not a crash."""
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - reported, and the run goes on
        detail = getattr(exc, "response", None)
        text = f"{type(exc).__name__}: {exc}" + (f"\n{detail}" if detail else "")
        section = Section(f"{name}: FAILED", text=["**The scenario could not run:**", "", "```", text, "```"])
        section.failed = True
        return section


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    opts = options(args)
    chosen = args.scenarios.split(",")
    require_wrk()
    # A SIGTERM unwinds like Ctrl-C, so the finally below still stops the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log = lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True)  # noqa: E731
    workdir = Path(tempfile.mkdtemp(prefix="bleepstore-bench-requests-"))
    server = None
    sections: list[Section] = []
    try:
        if args.endpoint:
            target = Target(args.endpoint.rstrip("/"), args.access_key, args.secret_key, args.region,
                            pid=args.server_pid)
            data_dir = None
            described = [("endpoint", args.endpoint), ("server", "external (not started by the harness)"),
                         ("sampled pid", str(args.server_pid) if args.server_pid else "none: server CPU/RSS n/a")]
        elif args.nodes:
            log(f"starting {args.nodes} BleepStore node(s) ({opts.workers} workers each) on PostgreSQL "
                "behind nginx")
            # Assigned before it starts, so the finally below also cleans up after a failed start
            # (stops what ran, drops the database).
            server = Cluster(args.nodes, opts.workers, args.database_url, opts.data_parent)
            try:
                server.start()
            except RuntimeError as exc:
                raise SystemExit(f"bench: the cluster did not start: {exc}") from None
            target, data_dir = server.target, str(server.data_dir)
            version, commit = report.server_info(REPO)
            described = [("server", f"BleepStore {version.split()[-1]}, commit {commit}")] + server.describe()
        else:
            log(f"starting BleepStore ({opts.workers} workers)")
            server = EmbeddedServer(workers=opts.workers, parent_dir=opts.data_parent)
            try:
                server.start()
            except RuntimeError as exc:
                raise SystemExit(f"bench: BleepStore did not start: {exc}") from None
            target, data_dir = server.target, str(server.data_dir)
            version, commit = report.server_info(REPO)
            described = [("server", f"BleepStore {version.split()[-1]}, commit {commit}"),
                         ("process", f"`bleepstore serve`: gunicorn, {opts.workers} gevent workers, 127.0.0.1"),
                         ("metadata", "SQLite (synchronous=FULL), objects up to 16 KiB inlined in it"),
                         ("storage", "local disk, fsync on (storage.local.fsync=true)"),
                         ("data dir", f"fresh temporary directory `{data_dir}`"),
                         ("start-up of this instance", f"{server.startup_seconds:.2f} s to first signed request")]
        described.append(("auth", "presigned URLs (SigV4 query auth, boto3 generate_presigned_url, ExpiresIn=3600)"))
        header = report.machine_info(data_dir)
        sampler = ClusterSampler(server) if args.nodes else ProcessSampler(target.pid)
        bench = Bench(target, sampler, opts, workdir, data_dir)
        plan = [("startup", bench.startup), ("small", bench.small), ("large", bench.large),
                ("list", bench.listing), ("versions", bench.versions),
                ("multipart", bench.multipart), ("sse", lambda: bench.sse(own_server=not args.endpoint))]
        for name, run in plan:
            if name not in chosen:
                continue
            if name == "startup" and args.endpoint:
                sections.append(Section("Start-up", text=["n/a: the harness did not start this server."]))
                continue
            if name == "sse" and args.nodes:
                sections.append(Section("Server-side encryption", text=[
                    "n/a with --nodes (this scenario measures one worker: it starts an embedded server "
                    "of its own, or uses --endpoint)."]))
                continue
            if name == "startup" and args.nodes:
                sections.append(Section("Start-up", text=[
                    "n/a with --nodes (this scenario starts the embedded server); the cluster's own "
                    "start-up is in the header."]))
                continue
            log(f"scenario {name}")
            sections.append(guarded(name, run))
            breakdown = cpu_section(sections[-1]) if args.nodes else None
            if breakdown:
                sections.append(breakdown)
        sampler.close()
        if server and any(s.failed or any(r.errors for r in s.rows) for s in sections):
            sections.append(Section("Server log (tail)", text=["```", server.log_tail(3000), "```"]))
        header.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
        text = report.render(header, described, sections, "python -m bench " + shlex.join(argv))
    finally:
        if server:
            log("stopping BleepStore" + (" nodes, nginx, and dropping the database" if args.nodes else ""))
            server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.write(text)
    if args.output:
        Path(args.output).write_text(text)
        log(f"report written to {args.output}")
    return 1 if any(s.failed or any(r.errors for r in s.rows) for s in sections) else 0
