"""The demo's cohort behaves like the platform's learners, as the ledger itself counts them.

The figures (DESIGN §1) are checked on the ledger's decisions, not on the simulation's plan:
every message goes through parsing and the handlers, so a completer counts only if the rules
really issued the specialization certificate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from commands.cloudevents import RejectionError, parse
from commands.handlers import handle
from ledger.application import Ledger
from ledger.broker import OutRecord
from ledger.domain.learner import Learner
from ledger.domain.learner_state import Intent, PaymentState
from ledger.entrypoints.demo.cohort import Cohort
from ledger.errors import LedgerError

LEARNERS = 2_000
SEED = 2014  # the default seed of `ledger demo`
#: Messages handled per session: one session for all would make one huge in-memory commit.
BATCH = 500
TOLERANCE = 0.04


@dataclass(frozen=True)
class Run:
    """A cohort after the ledger has handled every message."""

    learners: list[Learner]
    #: How many events of each topic the ledger stored.
    event_kinds: Counter[str]
    #: Messages the intake would reject whole, by why (see `_run`).
    rejected: Counter[str]


def _batches(records: list[OutRecord]) -> Iterator[list[OutRecord]]:
    for start in range(0, len(records), BATCH):
        yield records[start : start + BATCH]


def _run(records: list[OutRecord], ledger: Ledger, seen: Counter[str]) -> set[str]:
    """Handle every record as the intake would; the learner ids named.

    Counts in `seen` what the intake would reject whole: `malformed` messages and `errors`
    (a `LedgerError` from a handler, raised before anything changed).
    """
    learner_ids: set[str] = set()
    for batch in _batches(records):
        with ledger.session() as session:
            for record in batch:
                try:
                    message = parse(record.value, record.headers)
                except RejectionError:
                    seen["malformed"] += 1
                    continue
                if not message.type.startswith("ledger.specialization."):
                    learner_ids.add(message.subject)
                try:
                    handle(session, message)
                except LedgerError:
                    seen["errors"] += 1
    return learner_ids


@pytest.fixture(scope="module")
def cohort_run() -> Iterator[Run]:
    ledger = Ledger(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        cohort = Cohort(LEARNERS, SEED, "ledger.intake", run_id="test")
        rejected: Counter[str] = Counter()
        _run(cohort.catalog(), ledger, rejected)
        learner_ids = _run(cohort.learner_messages(), ledger, rejected)
        learners = [ledger.get_learner(i) for i in sorted(learner_ids)]
        notifications = ledger.recorder.select_notifications(start=1, limit=1_000_000)
        kinds = Counter(n.topic for n in notifications)
        yield Run([lr for lr in learners if lr is not None], kinds, rejected)
    finally:
        ledger.close()


def _completed(learner: Learner) -> bool:
    return any(c.kind == "specialization" and c.is_live for c in learner.certificates.values())


def _intends(learner: Learner) -> bool:
    return any(e.intent is Intent.CERTIFICATE for e in learner.enrollments.values())


def _paid(learner: Learner) -> bool:
    return any(p.state is PaymentState.COUNTED for p in learner.payments.values())


def _rate(learners: list[Learner]) -> float:
    return sum(_completed(lr) for lr in learners) / len(learners)


def test_the_cohort_completes_at_the_platforms_rates(cohort_run: Run) -> None:
    """4% of all, 24% of those whose enrollment says certificate, 63% of those with a counted
    payment: the specialization certificates the ledger issued, over each group."""
    learners = cohort_run.learners
    assert len(learners) == LEARNERS
    intending = [lr for lr in learners if _intends(lr)]
    paying = [lr for lr in learners if _paid(lr)]
    rates = (_rate(learners), _rate(intending), _rate(paying))
    assert rates == pytest.approx((0.04, 0.24, 0.63), abs=TOLERANCE), rates


def test_completers_earned_it_under_the_rules(cohort_run: Run) -> None:
    """Each completer has every required course certified and a verified identity."""
    completers = [lr for lr in cohort_run.learners if _completed(lr)]
    assert completers
    for learner in completers:
        certified = {
            c.subject for c in learner.certificates.values() if c.kind == "course" and c.is_live
        }
        (enrollment,) = learner.enrollments.values()
        assert set(enrollment.required_courses) <= certified, learner.learner_id
        assert {v.method for v in learner.verifications} == {"government_id"}


def test_the_rules_say_no_and_the_malformed_message_is_rejected(cohort_run: Run) -> None:
    """The refusals are the rules' "no", recorded in histories; only one message is rejected."""
    kinds = cohort_run.event_kinds
    for refusal in ("request_refused", "refund_denied", "capstone_grade_rejected"):
        assert kinds[f"ledger.learner.{refusal}"] > 0, refusal
    assert kinds["ledger.learner.identity_rejected"] > 0
    assert cohort_run.rejected == Counter(malformed=1)


def test_the_seed_and_the_run_id_decide_every_message() -> None:
    """Reruns give the same messages: the clock only picks the default run id."""

    def values(seed: int) -> list[bytes | None]:
        return [r.value for r in Cohort(60, seed, "t", run_id="same").learner_messages()]

    assert values(7) == values(7)
    assert values(7) != values(8)
