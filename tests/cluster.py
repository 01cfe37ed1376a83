"""Three BleepStore nodes behind nginx, as one `server` for the conformance suite.

The nodes are started the way the deployment starts them (deploy/migrate.sh once,
then deploy/entrypoint.sh per node with migrations off), on ONE PostgreSQL
database and ONE shared data directory, behind nginx rendered from
deploy/nginx.conf with round-robin: every request of a test may land on a
different node, so the whole suite checks that nothing lives in one process.
"""
from __future__ import annotations

from pathlib import Path

from .deploy.support import Nginx, Node, process_environ, run_migrate
from .servers import SWEEP_ON_DEMAND, free_port, lifecycle_once, sweep_once, write_config

NODES = 3


class Cluster:
    """The parts of `Server` the conformance suite uses, for nginx + three nodes."""

    engine = "postgresql"
    backend = "local"
    inline_max_size = 16 * 1024
    proxied = True  # requests reach the nodes through nginx

    def __init__(self, workdir: Path, database_url: str) -> None:
        self.workdir = workdir
        self.config = write_config(workdir, database_url)  # storage under workdir/data/objects
        self.env = process_environ({"BLEEPSTORE_CONFIG": str(self.config),
                                    "BLEEPSTORE_METADATA_MIGRATE_ON_START": "false", **SWEEP_ON_DEMAND})
        self.nodes: list[Node] = []
        self.nginx: Nginx | None = None

    def start(self) -> "Cluster":
        migrate = run_migrate(self.env)
        if migrate.returncode != 0:
            raise RuntimeError(f"deploy/migrate.sh failed:\n{migrate.stdout}{migrate.stderr}")
        try:
            for i in range(NODES):
                env = dict(self.env, BLEEPSTORE_SERVER_HOST="127.0.0.1", BLEEPSTORE_SERVER_PORT=str(free_port()))
                node = Node(f"node{i}", env, self.workdir / f"node{i}")
                node.spawn()
                self.nodes.append(node)
            for node in self.nodes:
                node.wait_ready()
            self.nginx = Nginx(self.workdir / "nginx", [f"127.0.0.1:{n.port}" for n in self.nodes]).start()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def port(self) -> int:
        return self.nginx.http_port

    @property
    def endpoint(self) -> str:
        return self.nginx.endpoint

    def sweep(self) -> int:
        return sweep_once(self.env)

    def lifecycle(self, now_us: int | None = None) -> dict:
        return lifecycle_once(self.env, now_us)

    def blobs(self) -> set[str]:
        data = self.workdir / "data" / "objects" / "data"
        return {p.name for p in data.glob("*/*/*") if p.is_file()}

    def blob_bytes(self, location: str) -> bytes:
        return (self.workdir / "data" / "objects" / "data" / location[:2] / location[2:4] / location).read_bytes()

    def log(self) -> str:
        return "\n".join(node.log() for node in self.nodes)

    def stop(self) -> None:
        if self.nginx:
            self.nginx.stop()
        for node in self.nodes:
            node.stop()
