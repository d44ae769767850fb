"""Where a chaos run happens: a network namespace of its own, with its own services.

`ledger chaos` runs itself again inside `unshare --net --pid`: the new network namespace has only
a loopback interface, so the chaos broker listens on 127.0.0.1:9092 beside any other, and
cutting the network (`set_loopback(False)`) cuts every TCP connection of the run (Kafka's, the
API's) and nothing of the machine's. In the new PID namespace a small init (`chaos.init`) is
process 1 and the run its child: when the run ends, however it ends, the kernel ends every
process it started (broker, database, workers), so nothing of a chaos run outlives it.

PostgreSQL (pgserver) listens on a Unix socket, so a cut leaves it reachable, as a database on
the same host would be. The broker's jars are resolved by Maven before entering (the namespace
has no route out) and shared through a symbolic link; the state directory is a short temporary
path, since Unix socket paths are limited to about 107 bytes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from ledger.errors import StackError
from ledger.stack import kafka

#: Set in the environment of the run inside the namespace.
INSIDE = "LEDGER_CHAOS_INSIDE"
#: Variables naming services outside: the run inside uses its own.
_OUTSIDE_SERVICES = ("LEDGER_DATABASE_URL", "LEDGER_KAFKA_BOOTSTRAP", "LEDGER_TOPIC_PREFIX")

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sh22x"  # struct ifreq: the name, then ifr_flags in a 24-byte union


def inside() -> bool:
    """Whether this process is the run inside the namespace."""
    return os.environ.get(INSIDE) == "1"


def run_inside(argv: list[str], main_state: Path, *, keep: bool = False) -> int:
    """Run `ledger ARGV` again in a network namespace with a state directory of its own;
    return its exit status. The directory is removed afterwards unless `keep`."""
    if shutil.which("unshare") is None:
        raise StackError("`ledger chaos` needs `unshare` (util-linux) to make a network namespace")
    lib = kafka.ensure_jars(main_state)
    root = Path(tempfile.mkdtemp(prefix="lc-", dir="/tmp"))
    root.chmod(0o755)  # pgserver runs PostgreSQL as a user of its own when started by root
    (root / "kafka").mkdir()
    (root / "kafka" / "lib").symlink_to(lib.resolve())
    env = {k: v for k, v in os.environ.items() if k not in _OUTSIDE_SERVICES}
    env.update({INSIDE: "1", "LEDGER_STATE_DIR": str(root)})
    as_root = [] if os.geteuid() == 0 else ["--map-root-user"]
    command = [
        "unshare",
        "--net",
        "--pid",
        "--mount",
        "--fork",
        "--mount-proc",
        "--kill-child",
        *as_root,
        "--",
        sys.executable,
        "-m",
        "ledger.entrypoints.chaos.init",  # process 1 in there: reaps orphans, passes on signals
        *argv,
    ]
    try:
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        if keep:
            sys.stderr.write(f"chaos state kept in {root}\n")
        else:
            shutil.rmtree(root, ignore_errors=True)


def set_loopback(up: bool) -> None:
    """Bring this namespace's loopback interface up or down (a network cut, and its end)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(_IFREQ, fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        flags = flags | _IFF_UP if up else flags & ~_IFF_UP
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags))
