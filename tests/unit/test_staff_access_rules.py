"""Staff access without services: roles read from a command line, session cookies that cannot
be forged, form tokens, the settings that shape the API, and every reason code in words."""

from __future__ import annotations

import hashlib

import pytest

from ledger.domain.reasons import WORDS, Reason, in_words
from ledger.entrypoints.staff.roles import Role, needed, parse_roles
from ledger.entrypoints.staff.tokens import digest
from ledger.entrypoints.web.sessions import SessionError, Sessions
from ledger.errors import ConfigurationError
from ledger.settings import Settings

KEY = b"k" * 32


def test_roles_are_read_as_named_and_a_bad_one_is_named_with_the_good_ones() -> None:
    assert parse_roles(["support", " Finance "]) == {Role.SUPPORT, Role.FINANCE}
    with pytest.raises(ValueError, match="no role 'wizard': the roles are support, finance"):
        parse_roles(["support", "wizard"])
    with pytest.raises(ValueError, match="at least one role"):
        parse_roles([])
    assert needed((Role.OPERATOR,)) == "the operator role"
    assert needed((Role.SUPPORT, Role.AUDITOR)) == "the support or auditor role"
    assert needed(tuple(Role)) == "a staff role"


def test_a_token_is_kept_as_its_sha256() -> None:
    assert digest("ldg_abc") == hashlib.sha256(b"ldg_abc").digest()


def test_a_session_names_its_token_and_cannot_be_forged() -> None:
    sessions = Sessions(lambda: KEY, secure=False)
    cookie = sessions.issue("tok_0123456789")
    assert sessions.token_id(cookie) == "tok_0123456789"
    forged = Sessions(lambda: b"x" * 32, secure=False).issue("tok_0123456789")
    with pytest.raises(SessionError, match="not valid"):
        sessions.token_id(forged)
    with pytest.raises(SessionError, match="not valid"):
        sessions.token_id(cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1])
    with pytest.raises(SessionError, match="not signed in"):
        sessions.token_id(None)


def test_a_form_token_belongs_to_its_session() -> None:
    sessions = Sessions(lambda: KEY, secure=False)
    one, other = sessions.issue("tok_1"), sessions.issue("tok_2")
    assert sessions.csrf_ok(one, sessions.csrf_token(one))
    assert not sessions.csrf_ok(one, sessions.csrf_token(other))
    assert not sessions.csrf_ok(one, None)
    assert not sessions.csrf_ok(None, sessions.csrf_token(one))


def test_the_apis_settings_are_checked_with_the_variables_name() -> None:
    found = Settings.from_env(
        {
            "LEDGER_API_HOST": "0.0.0.0",  # noqa: S104 - what a container sets
            "LEDGER_PUBLIC_RATE_LIMIT": "10/second",
            "LEDGER_SESSION_SECRET": "s" * 40,
            "LEDGER_COOKIE_SECURE": "true",
        }
    )
    assert (found.api_host, found.public_rate_limit, found.cookie_secure) == (
        "0.0.0.0",  # noqa: S104
        "10/second",
        True,
    )
    assert "s" * 40 not in repr(found)  # a secret is never shown
    with pytest.raises(ConfigurationError, match=r"LEDGER_PUBLIC_RATE_LIMIT: .*N/second"):
        Settings.from_env({"LEDGER_PUBLIC_RATE_LIMIT": "lots"})
    with pytest.raises(ConfigurationError, match=r"LEDGER_SESSION_SECRET: .*at least 32"):
        Settings.from_env({"LEDGER_SESSION_SECRET": "short"})


def test_every_reason_code_has_words() -> None:
    assert set(WORDS) == set(Reason)
    assert in_words("refund_window_closed") == "the refund window had closed"
    assert in_words("from_a_newer_release") == "from a newer release"
