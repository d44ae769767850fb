"""The local Apache Kafka broker: one KRaft node from Maven Central's jars, in `STATE_DIR/kafka`.

Maven resolves `kafka_2.13` and a log4j SLF4J binding (see `broker/pom.xml`) once into
`kafka/lib`; the storage is formatted once with a cluster id kept beside the data; the node runs
as `kafka.Kafka server.properties` in its own session, so it outlives the `ledger stack up` that
started it. Ready means the client port accepts a connection (the broker opens it last).
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
from importlib import resources
from pathlib import Path

from ledger.errors import StackError

HOST = "127.0.0.1"
CLIENT_PORT = 9092
CONTROLLER_PORT = 9093
MIN_JAVA = 17


def kafka_dir(state_dir: Path) -> Path:
    return state_dir / "kafka"


def _pid_file(state_dir: Path) -> Path:
    return kafka_dir(state_dir) / "broker.pid"


def _resource(name: str) -> bytes:
    return resources.files("ledger.stack").joinpath("broker", name).read_bytes()


def port_open(host: str = HOST, port: int = CLIENT_PORT, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def running_pid(state_dir: Path) -> int | None:
    """The pid of the broker this state directory started, if it still runs."""
    try:
        pid = int(_pid_file(state_dir).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"kafka.Kafka" in cmdline else None


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


def _server_properties(state_dir: Path) -> str:
    data = kafka_dir(state_dir) / "data"
    return "\n".join(
        [
            "# Written by `ledger stack up`: a single KRaft node, loopback only.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers={HOST}:{CONTROLLER_PORT}",
            f"listeners=PLAINTEXT://{HOST}:{CLIENT_PORT},CONTROLLER://{HOST}:{CONTROLLER_PORT}",
            f"advertised.listeners=PLAINTEXT://{HOST}:{CLIENT_PORT},"
            f"CONTROLLER://{HOST}:{CONTROLLER_PORT}",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=3",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            # Nothing the ledger writes may expire: what it received and decided is audit trail.
            "log.retention.ms=-1",
            "log.retention.bytes=-1",
            "",
        ]
    )


def ensure_formatted(state_dir: Path, lib: Path) -> Path:
    """Write server.properties and format the storage the first time; return the properties."""
    directory = kafka_dir(state_dir)
    properties = directory / "server.properties"
    properties.write_text(_server_properties(state_dir))
    (directory / "log4j2.properties").write_bytes(_resource("log4j2.properties"))
    if (directory / "data" / "meta.properties").exists():
        return properties
    id_file = directory / "cluster-id"
    if not id_file.exists() or id_file.read_text().startswith("-"):
        id_file.write_text(_cluster_id())
    result = subprocess.run(
        [
            "java",
            "-cp",
            f"{lib}/*",
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "--ignore-formatted",
            "-t",
            id_file.read_text().strip(),
            "-c",
            str(properties),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(
            f"formatting Kafka storage failed:\n{(result.stdout + result.stderr)[-3000:]}"
        )
    return properties


def start(state_dir: Path, timeout_s: float = 120.0) -> int:
    """Start the broker unless it runs; return its pid once the client port accepts."""
    pid = running_pid(state_dir)
    if pid is not None:
        return pid
    if port_open():
        raise StackError(
            f"something else already listens on {HOST}:{CLIENT_PORT}: set "
            f"LEDGER_KAFKA_BOOTSTRAP={HOST}:{CLIENT_PORT} to use it as the ledger's broker, "
            "or stop it"
        )
    check_toolchain(maven=False)
    lib = ensure_jars(state_dir)
    properties = ensure_formatted(state_dir, lib)
    directory = kafka_dir(state_dir)
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    heap = os.environ.get("LEDGER_KAFKA_HEAP", "1G")
    command = [
        "java",
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={logs}",
        f"-Dlog4j2.configurationFile={directory / 'log4j2.properties'}",
        "-cp",
        f"{lib}/*",
        "kafka.Kafka",
        str(properties),
    ]
    with (logs / "console.out").open("ab") as console:
        process = subprocess.Popen(
            command,
            stdout=console,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=directory,
        )
    _pid_file(state_dir).write_text(str(process.pid))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(
                f"the Kafka broker exited with status {process.returncode} while starting; "
                f"see {logs / 'server.log'} and {logs / 'console.out'}"
            )
        if port_open():
            return process.pid
        time.sleep(0.25)
    raise StackError(f"the Kafka broker did not open port {CLIENT_PORT} in {timeout_s:.0f} s")


def stop(state_dir: Path, timeout_s: float = 60.0) -> bool:
    """Stop the broker this state directory started (SIGTERM, then SIGKILL); False if none."""
    pid = running_pid(state_dir)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if running_pid(state_dir) is None:
            _pid_file(state_dir).unlink(missing_ok=True)
            return True
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    _pid_file(state_dir).unlink(missing_ok=True)
    return True
