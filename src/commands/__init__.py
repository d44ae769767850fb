"""Intake: CloudEvents from platform services, validated and translated into `Ledger` commands.

Intake translates, it never decides: the pydantic models parse a message, one handler per type
calls one `LedgerSession` method, and the aggregates decide.
"""
