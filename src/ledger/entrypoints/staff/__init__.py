"""Staff access: who may read what (tokens and their roles), and the record of what they read.

Support staff see personal data: payments, identity, grades. So every staff route of the API and
the console needs a token, each token holds the roles its holder needs and no more, and every
read of a learner's data is itself recorded, so an auditor can tell who looked. The CLI, which
reaches PostgreSQL directly with the database's own credentials, records its reads too.
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection


def create_tables(conn: Connection[Any]) -> None:
    """The tokens, the record of reads, the console's signing key and the rebuilds asked for."""
    from ledger.entrypoints import rebuilds  # noqa: PLC0415
    from ledger.entrypoints.staff import reads, secrets, tokens  # noqa: PLC0415

    for module in (tokens, reads, secrets, rebuilds):
        module.create_table(conn)
