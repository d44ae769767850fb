"""The errors the ledger raises on purpose.

Every error a user or a publishing service can cause is a `LedgerError`, so entry points can tell
"you sent something the ledger cannot record" (report it, keep the message, carry on) from a bug
(crash loudly). Each message says what was wrong and what to do about it.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Raised when a request cannot be carried out as asked; the message says why and what to do."""

    #: A short, stable code for the kind of error, stored with rejected messages.
    code = "ledger_error"


class CatalogError(LedgerError):
    """Raised when a catalog message describes a specialization the rulebook does not allow."""

    code = "invalid_specialization"


class UnknownSpecializationError(LedgerError):
    """Raised when a command names a specialization that was never published."""

    code = "unknown_specialization"


class SpecializationExistsError(LedgerError):
    """Raised when a specialization id is published a second time with different content."""

    code = "specialization_exists"


class ConfigurationError(LedgerError):
    """Raised when the environment does not describe a usable ledger (bad URL, missing tool)."""

    code = "configuration"


class StackError(LedgerError):
    """Raised when `ledger stack` cannot start, find or stop PostgreSQL or Kafka."""

    code = "stack"


class NotFoundError(LedgerError):
    """Raised when a query names a learner, specialization or certificate never seen."""

    code = "not_found"
