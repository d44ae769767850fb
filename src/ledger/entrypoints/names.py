"""The workers `ledger run WORKER` starts, by name: a module of its own, light enough for the CLI
to build its arguments without importing the workers."""

from __future__ import annotations

from enum import StrEnum

from ledger.stack.names import Service

__all__ = ["Service", "WorkerName"]


class WorkerName(StrEnum):
    ALL = "all"
    INTAKE = "intake"
    RELAY = "relay"
    PROJECTIONS = "projections"
    API = "api"
    #: The Open edX bridge (`ledger run bridge openedx`): not among `all`, it needs a mapping.
    BRIDGE = "bridge"
    #: xAPI statements followed into an LRS (`ledger run xapi`): not among `all` either.
    XAPI = "xapi"
