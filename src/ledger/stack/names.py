"""The services `ledger stack` manages, by name: a module of its own, light enough for the CLI
to build `ledger stack up SERVICE` without importing what starts them."""

from __future__ import annotations

from enum import StrEnum


class Service(StrEnum):
    POSTGRES = "postgres"
    KAFKA = "kafka"
