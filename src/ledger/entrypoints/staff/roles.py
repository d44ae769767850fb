"""The staff roles, and what each one opens (DESIGN §7).

A token holds one or more roles. A route names the roles that may use it; holding any one of
them is enough.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A kind of work a member of staff does, named as the platform names it."""

    SUPPORT = "support"
    FINANCE = "finance"
    AUDITOR = "auditor"
    OPERATOR = "operator"
    PUBLISHER = "publisher"


#: What each role opens, as `ledger tokens create --help` and the docs say it.
OPENS: dict[Role, str] = {
    Role.SUPPORT: "learners' progress, why no certificate yet, retention figures",
    Role.FINANCE: "learners' payments, retention figures",
    Role.AUDITOR: "learners' histories (as of any time), exports and chain checks, "
    "who read a learner's data",
    Role.OPERATOR: "rejected messages and their retry, read models' lag and rebuilds, /metrics",
    Role.PUBLISHER: "POST /v1/events (services without a Kafka client)",
}

#: Any member of staff: figures across learners hold no one's personal data.
ANY_STAFF: tuple[Role, ...] = tuple(Role)


def parse_roles(names: list[str]) -> frozenset[Role]:
    """Role names as given on a command line, or a `ValueError` naming the bad one and the
    good ones."""
    roles: set[Role] = set()
    for name in names:
        try:
            roles.add(Role(name.strip().lower()))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise ValueError(f"no role {name!r}: the roles are {known}") from None
    if not roles:
        raise ValueError("a token needs at least one role")
    return frozenset(roles)


def needed(roles: tuple[Role, ...]) -> str:
    """The roles of a route in words: "the support role", "the support or auditor role"."""
    names = [r.value for r in roles]
    if len(names) == len(Role):
        return "a staff role"
    words = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return f"the {words} role"
