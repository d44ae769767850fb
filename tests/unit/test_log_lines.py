"""The JSON log: one line per call, whatever the values (orjson first, `json` for what orjson
cannot write), and the standard library's loggers in the same form."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = r"""
import logging
from ledger.logs import configure_logging, get_logger
configure_logging("json")
log = get_logger("t")
log.info("plain", partition=3, offset=12, message_id="m-1", ok=True, nothing=None)
log.info("keys", positions={3: 5, 1: 2})
log.info("odd", name="a\udcffb", big=2**70, kinds={1}, detail="é\u2028")
logging.getLogger("psycopg.pool").warning("from the standard library")
"""


def test_every_call_writes_one_json_line_whatever_its_values() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, check=True, timeout=60
    )
    lines = done.stderr.decode("utf-8").splitlines()
    assert len(lines) == 4
    plain, keys, odd, stdlib = (json.loads(line) for line in lines)
    assert plain["event"] == "plain" and plain["level"] == "info" and "timestamp" in plain
    assert (plain["partition"], plain["offset"], plain["ok"], plain["nothing"]) == (
        3,
        12,
        True,
        None,
    )
    assert keys["positions"] == {"3": 5, "1": 2}
    # A lone surrogate (a header name's undecodable byte) and an integer past 64 bits: orjson
    # refuses both, the line is written all the same.
    assert odd["name"] == "a\udcffb" and odd["big"] == 2**70 and odd["detail"] == "é\u2028"
    assert odd["kinds"] == "{1}"
    assert stdlib["event"] == "from the standard library" and stdlib["logger"] == "psycopg.pool"
