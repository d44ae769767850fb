"""eventsourcing's own recorder test cases, run against `LedgerRecorder` on the real PostgreSQL.

`LedgerRecorder` overrides how the library inserts events (one statement from four arrays, the
intake's bookkeeping in the same transaction, no pipeline mode), so it is held to the library's
own contract for an application recorder (notifications, their order, concurrent writers) and
a process recorder (tracking), each case on fresh tables in a database of this module's own.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.tests import persistence as contract
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ledger.entrypoints import bootstrap
from ledger.settings import Settings
from ledger.store import LedgerRecorder

pytestmark = pytest.mark.integration

EVENTS = "contract_events"
TRACKING = "contract_tracking"


@pytest.fixture(scope="module")
def database(base_settings: Settings) -> Iterator[dict[str, Any]]:
    """A database of this module's own; its connection parameters."""
    admin = bootstrap.services(base_settings)
    name = f"ledger_contract_{secrets.token_hex(3)}"
    with bootstrap.connect(admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield conninfo_to_dict(make_conninfo(admin.database_url, dbname=name))
    finally:
        with bootstrap.connect(admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _connected(request: pytest.FixtureRequest, database: dict[str, Any]) -> Iterator[None]:
    """Give each test case a datastore on that database, its tables dropped before and after."""
    if request.instance is None:
        yield
        return
    datastore = PostgresDatastore(
        str(database["dbname"]),
        str(database.get("host") or "localhost"),
        str(database.get("port") or "5432"),
        str(database.get("user") or "postgres"),
        str(database.get("password") or ""),
        pool_size=12,
        max_overflow=12,
    )
    _drop(datastore)
    request.instance.datastore = datastore
    try:
        yield
    finally:
        _drop(datastore)
        datastore.close()


def _drop(datastore: PostgresDatastore) -> None:
    with datastore.transaction(commit=True) as curs:
        for table in (EVENTS, TRACKING, "contract_intake_positions", "contract_intake_messages"):
            curs.execute(f'DROP TABLE IF EXISTS "{table}"')
        curs.execute('DROP TABLE IF EXISTS "contract_rejections", "contract_relay_positions"')


def _recorder(datastore: PostgresDatastore) -> LedgerRecorder:
    recorder = LedgerRecorder(datastore, events_table_name=EVENTS, tracking_table_name=TRACKING)
    recorder.create_table()
    return recorder


class TestLedgerRecorderAsApplicationRecorder(contract.ApplicationRecorderTestCase[Any]):
    datastore: PostgresDatastore

    def create_recorder(self) -> LedgerRecorder:
        return _recorder(self.datastore)


class TestLedgerRecorderAsProcessRecorder(contract.ProcessRecorderTestCase):
    datastore: PostgresDatastore

    def create_recorder(self) -> LedgerRecorder:
        return _recorder(self.datastore)
