"""The relay sleeps with nothing to publish and is woken by the event store's NOTIFY: an event
or a rejection stored reaches it at once, not at its next look (`Relay.idle`)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from ledger.relay import Relay
from ledger.settings import Settings
from ledger.store import IntakeBookkeeping, Rejection

from .helpers import open_ledger, services_of

pytestmark = pytest.mark.integration

AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _woken_after(relay: Relay, store: threading.Thread, bound_s: float = 20.0) -> float:
    """Seconds `relay.idle(bound_s)` waited while `store` stored something 0.3 s in."""
    started = time.monotonic()
    store.start()
    relay.idle(bound_s)
    waited = time.monotonic() - started
    store.join(10)
    return waited


def test_a_stored_event_or_rejection_wakes_the_idle_relay(own_settings: Settings) -> None:
    ledger = open_ledger(own_settings)
    relay = Relay(ledger, own_settings, services_of(own_settings).kafka_bootstrap)
    try:
        while relay.step():  # nothing yet: it finds nothing, and listens from here on
            pass
        relay.idle(0.05)

        def publish() -> None:
            time.sleep(0.3)
            ledger.publish_specialization(
                specialization_id="wake",
                title="Waking",
                partners=("U",),
                language="en",
                courses=("w-1", "w-2", "w-3"),
                capstone_course_id="w-cap",
                at=AT,
            )

        assert 0.3 <= _woken_after(relay, threading.Thread(target=publish)) < 5.0
        assert relay.step()  # and it publishes what woke it
        while relay.step():
            pass

        def reject() -> None:
            time.sleep(0.3)
            rejection = Rejection(own_settings.intake_topic, 0, 7, None, b"x", [], "not_json", "x")
            ledger.session().commit(intake=IntakeBookkeeping(rejections=[rejection]))

        assert 0.3 <= _woken_after(relay, threading.Thread(target=reject)) < 5.0
        assert relay.step()
    finally:
        relay.close()
        ledger.close()


def test_with_nothing_stored_the_relay_sleeps_its_whole_bound(own_settings: Settings) -> None:
    ledger = open_ledger(own_settings)
    relay = Relay(ledger, own_settings, services_of(own_settings).kafka_bootstrap)
    try:
        while relay.step():
            pass
        relay.idle(0.05)  # whatever was pending from before is drained
        started = time.monotonic()
        relay.idle(0.5)
        assert time.monotonic() - started >= 0.45
    finally:
        relay.close()
        ledger.close()
