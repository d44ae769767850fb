"""The local Apache Kafka: one KRaft node, or a cluster of them, from Maven Central's jars.

Maven resolves `kafka_2.13` and a log4j SLF4J binding (see `broker/pom.xml`) once into
`STATE_DIR/kafka/lib`; each node's storage is formatted once with a cluster id kept beside the
data; every node runs as `kafka.Kafka server.properties` in its own session, so it outlives the
`ledger stack up` that started it. Ready means the client port accepts a connection (a node opens
it last, once it has joined the metadata quorum).

The default is one node in `STATE_DIR/kafka` (client port 9092), what the demo and the tests use.
`ledger stack up --brokers 3` makes a cluster instead: nodes 1-3 in `STATE_DIR/kafka/node-N`, each
both broker and controller (a static quorum of three voters: any two elect a leader), on client
ports 9092, 9094, 9096 and controller ports one above. The cluster replicates every topic three
times and takes a write only when two replicas have it (`min.insync.replicas=2`, producers with
`acks=all`), so losing any one node loses nothing and stops nothing. The number of nodes is
recorded in `STATE_DIR/kafka/brokers` when the storage is first formatted: later commands
(`down`, `status`, every worker finding its bootstrap servers) read it there, and a state
directory keeps the layout it was made with.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ledger.errors import StackError

HOST = "127.0.0.1"
CLIENT_PORT = 9092
CONTROLLER_PORT = 9093
MIN_JAVA = 17
#: Node counts `ledger stack up --brokers` accepts: one node, or a cluster that survives the
#: loss of any one (three voters, three replicas, two in sync).
LAYOUTS = (1, 3)
#: Each node's heap when several share the machine (one node: 1 GB, or LEDGER_KAFKA_HEAP).
CLUSTER_HEAP = "512M"


def kafka_dir(state_dir: Path) -> Path:
    return state_dir / "kafka"


@dataclass(frozen=True)
class Node:
    """One KRaft node of the local Kafka: where its files are and what it listens on."""

    node_id: int
    directory: Path
    client_port: int
    controller_port: int

    @property
    def address(self) -> str:
        return f"{HOST}:{self.client_port}"

    @property
    def pid_file(self) -> Path:
        return self.directory / "broker.pid"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"


def _layout_file(state_dir: Path) -> Path:
    return kafka_dir(state_dir) / "brokers"


def recorded_brokers(state_dir: Path) -> int | None:
    """The node count this state directory's Kafka was made with; None before the first
    `ledger stack up` (a directory from before clusters existed holds one node)."""
    try:
        return int(_layout_file(state_dir).read_text().strip())
    except (FileNotFoundError, ValueError):
        return 1 if (kafka_dir(state_dir) / "data" / "meta.properties").exists() else None


def nodes(state_dir: Path, brokers: int | None = None) -> list[Node]:
    """The nodes of `brokers` (default: the recorded layout, else one node)."""
    count = brokers or recorded_brokers(state_dir) or 1
    if count == 1:
        return [Node(1, kafka_dir(state_dir), CLIENT_PORT, CONTROLLER_PORT)]
    return [
        Node(n, kafka_dir(state_dir) / f"node-{n}", CLIENT_PORT + 2 * i, CONTROLLER_PORT + 2 * i)
        for i, n in enumerate(range(1, count + 1))
    ]


def bootstrap_servers(state_dir: Path) -> str:
    """Every node's client address: a client that starts while one node is down still finds
    the cluster through another."""
    return ",".join(node.address for node in nodes(state_dir))


def _resource(name: str) -> bytes:
    return resources.files("ledger.stack").joinpath("broker", name).read_bytes()


def port_open(host: str = HOST, port: int = CLIENT_PORT, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def node_pid(node: Node) -> int | None:
    """The pid of the node's process, if it still runs."""
    try:
        pid = int(node.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"kafka.Kafka" in cmdline else None


def running_pid(state_dir: Path) -> int | None:
    """The pid of the first node this state directory started, if it still runs."""
    return node_pid(nodes(state_dir)[0])


def running_pids(state_dir: Path) -> dict[int, int | None]:
    """Every node's pid by node id (None for a node that is down)."""
    return {node.node_id: node_pid(node) for node in nodes(state_dir)}


def check_toolchain(*, maven: bool = True) -> None:
    """Raise a clear `StackError` unless Java 17+ (and, to resolve jars, Maven) are on PATH."""
    java = shutil.which("java")
    if java is None:
        raise StackError(
            "Java is not installed: the local Kafka broker needs Java 17 or newer "
            "(Debian: apt-get install openjdk-17-jre-headless), or set LEDGER_KAFKA_BOOTSTRAP "
            "to use a broker you already run"
        )
    version = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)', version.stderr + version.stdout)
    if match is None or int(match.group(1)) < MIN_JAVA:
        found = match.group(1) if match else "unknown"
        raise StackError(
            f"Java {found} found, the Kafka broker needs Java {MIN_JAVA} or newer; "
            "install it or set LEDGER_KAFKA_BOOTSTRAP"
        )
    if maven and shutil.which("mvn") is None:
        raise StackError(
            "Maven is not installed: it resolves the Kafka broker's jars from Maven Central "
            "(Debian: apt-get install maven), or set LEDGER_KAFKA_BOOTSTRAP"
        )


def ensure_jars(state_dir: Path) -> Path:
    """Resolve the broker's jars once (again only when the pom changes); return their folder."""
    pom = _resource("pom.xml")
    digest = hashlib.sha256(pom).hexdigest()[:16]
    lib = kafka_dir(state_dir) / "lib"
    marker = lib / f".resolved-{digest}"
    if marker.exists():
        return lib
    check_toolchain()
    work = kafka_dir(state_dir) / "maven"
    work.mkdir(parents=True, exist_ok=True)
    (work / "pom.xml").write_bytes(pom)
    staging = kafka_dir(state_dir) / "lib.new"
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(work / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            "Maven could not resolve the Kafka broker's jars:\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    marker.touch()
    return lib


def _cluster_id() -> str:
    """A KRaft cluster id: a base64url-encoded UUID without padding, 22 characters.

    Like Kafka's own generator, it never starts with '-', which the storage tool's argument
    parser would read as an option.
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def _server_properties(node: Node, cluster: list[Node]) -> str:
    listeners = f"PLAINTEXT://{HOST}:{node.client_port},CONTROLLER://{HOST}:{node.controller_port}"
    lines = [
        "# Written by `ledger stack up`: a KRaft node (broker and controller), loopback only.",
        "process.roles=broker,controller",
        f"node.id={node.node_id}",
        f"listeners={listeners}",
        f"advertised.listeners={listeners}",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        f"log.dirs={node.directory / 'data'}",
        "num.partitions=3",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.num.partitions=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
        # Nothing the ledger writes may expire: what it received and decided is audit trail.
        "log.retention.ms=-1",
        "log.retention.bytes=-1",
    ]
    if len(cluster) == 1:
        lines += [
            f"controller.quorum.bootstrap.servers={HOST}:{node.controller_port}",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
        ]
    else:
        voters = ",".join(f"{n.node_id}@{HOST}:{n.controller_port}" for n in cluster)
        replicas = min(3, len(cluster))
        in_sync = max(1, replicas - 1)
        lines += [
            f"controller.quorum.voters={voters}",
            # Every topic, the broker's own included, on three nodes; a write taken only once
            # two have it; a replica that was not in sync never becomes leader (it would lose
            # what the others acknowledged).
            f"default.replication.factor={replicas}",
            f"min.insync.replicas={in_sync}",
            "unclean.leader.election.enable=false",
            f"offsets.topic.replication.factor={replicas}",
            f"transaction.state.log.replication.factor={replicas}",
            f"transaction.state.log.min.isr={in_sync}",
            f"share.coordinator.state.topic.replication.factor={replicas}",
            f"share.coordinator.state.topic.min.isr={in_sync}",
            # A node killed outright is noticed by the controller when its heartbeats stop:
            # then its partitions get new leaders and it leaves every in-sync set, and writes
            # flow again. Kafka's 9 s suits a data centre; on loopback 4 s is ample.
            "broker.heartbeat.interval.ms=1000",
            "broker.session.timeout.ms=4000",
            "replica.lag.time.max.ms=10000",
        ]
    return "\n".join([*lines, ""])


def _format(node: Node, properties: Path, cluster_id: str, lib: Path, *, standalone: bool) -> None:
    result = subprocess.run(
        [
            "java",
            "-cp",
            f"{lib}/*",
            "kafka.tools.StorageTool",
            "format",
            *(["--standalone"] if standalone else []),
            "--ignore-formatted",
            "-t",
            cluster_id,
            "-c",
            str(properties),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"formatting Kafka storage of node {node.node_id} failed:\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )


def _check_layout(state_dir: Path, brokers: int | None) -> int:
    """The node count to run: `brokers`, if the state directory has no other layout."""
    recorded = recorded_brokers(state_dir)
    if brokers is not None and recorded is not None and brokers != recorded:
        raise StackError(
            f"the Kafka in {kafka_dir(state_dir)} was made with {recorded} broker(s), not "
            f"{brokers}: run `ledger stack up` without --brokers, or use another "
            "LEDGER_STATE_DIR (the ledger's topics are its audit trail: nothing here moves them)"
        )
    count = brokers or recorded or 1
    if count not in LAYOUTS:
        raise StackError(f"--brokers {count}: the local Kafka runs 1 or 3 nodes")
    return count


def ensure_formatted(state_dir: Path, lib: Path, brokers: int | None = None) -> list[Node]:
    """Write every node's server.properties and format storage the first time; record the
    layout; return the nodes. A different layout than the one recorded is refused: a
    cluster's data cannot become a single node's, or the reverse."""
    count = _check_layout(state_dir, brokers)
    cluster = nodes(state_dir, count)
    directory = kafka_dir(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    id_file = directory / "cluster-id"
    if not id_file.exists() or id_file.read_text().startswith("-"):
        id_file.write_text(_cluster_id())
    cluster_id = id_file.read_text().strip()
    for node in cluster:
        node.directory.mkdir(parents=True, exist_ok=True)
        properties = node.directory / "server.properties"
        properties.write_text(_server_properties(node, cluster))
        (node.directory / "log4j2.properties").write_bytes(_resource("log4j2.properties"))
        if not (node.directory / "data" / "meta.properties").exists():
            _format(node, properties, cluster_id, lib, standalone=count == 1)
    _layout_file(state_dir).write_text(f"{count}\n")
    return cluster


def _launch(node: Node, lib: Path, heap: str) -> subprocess.Popen[bytes]:
    node.logs.mkdir(parents=True, exist_ok=True)
    command = [
        "java",
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={node.logs}",
        f"-Dlog4j2.configurationFile={node.directory / 'log4j2.properties'}",
        "-cp",
        f"{lib}/*",
        "kafka.Kafka",
        str(node.directory / "server.properties"),
    ]
    with (node.logs / "console.out").open("ab") as console:
        process = subprocess.Popen(
            command,
            stdout=console,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=node.directory,
        )
    node.pid_file.write_text(str(process.pid))
    return process


def start(state_dir: Path, brokers: int | None = None, timeout_s: float = 120.0) -> list[int]:
    """Start every node that is not running (all at once: a cluster's nodes wait for a quorum
    of each other); return their pids once every client port accepts."""
    cluster = nodes(state_dir, _check_layout(state_dir, brokers))
    down = [node for node in cluster if node_pid(node) is None]
    if not down:
        return [pid for node in cluster if (pid := node_pid(node)) is not None]
    for node in down:
        if port_open(port=node.client_port):
            raise StackError(
                f"something else already listens on {node.address}: set "
                f"LEDGER_KAFKA_BOOTSTRAP={node.address} to use it as the ledger's broker, "
                "or stop it"
            )
    check_toolchain(maven=False)
    lib = ensure_jars(state_dir)
    cluster = ensure_formatted(state_dir, lib, brokers)
    heap = os.environ.get("LEDGER_KAFKA_HEAP", "1G" if len(cluster) == 1 else CLUSTER_HEAP)
    started = {node.node_id: _launch(node, lib, heap) for node in down}
    deadline = time.monotonic() + timeout_s
    waiting = list(down)
    while waiting and time.monotonic() < deadline:
        for node in list(waiting):
            process = started[node.node_id]
            if process.poll() is not None:
                raise StackError(
                    f"Kafka node {node.node_id} exited with status {process.returncode} while "
                    f"starting; see {node.logs / 'server.log'} and {node.logs / 'console.out'}"
                )
            if port_open(port=node.client_port):
                waiting.remove(node)
        if waiting:
            time.sleep(0.25)
    if waiting:
        ports = ", ".join(str(n.client_port) for n in waiting)
        raise StackError(f"Kafka did not open port(s) {ports} in {timeout_s:.0f} s")
    return [pid for node in cluster if (pid := node_pid(node)) is not None]


def kill_node(state_dir: Path, node_id: int) -> int:
    """SIGKILL one node (a fault of `ledger chaos`); return its pid."""
    node = next((n for n in nodes(state_dir) if n.node_id == node_id), None)
    pid = node_pid(node) if node is not None else None
    if pid is None:
        raise StackError(f"Kafka node {node_id} is not running")
    os.kill(pid, signal.SIGKILL)
    return pid


def stop(state_dir: Path, timeout_s: float = 60.0) -> bool:
    """Stop every node this state directory started (SIGTERM to all at once, then SIGKILL to
    any still there after `timeout_s`); False if none ran."""
    running = {node.node_id: (node, pid) for node in nodes(state_dir) if (pid := node_pid(node))}
    if not running:
        return False
    for _node, pid in running.values():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(node_pid(n) for n, _ in running.values()):
        time.sleep(0.2)
    for node, pid in running.values():
        if node_pid(node) is not None:
            os.kill(pid, signal.SIGKILL)
        node.pid_file.unlink(missing_ok=True)
    return True
