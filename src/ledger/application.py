"""The `Ledger` application: the command layer in front of the aggregates.

One method per inbound message type: load the aggregates, let them decide, save. The intake
worker handles a whole Kafka batch in one `LedgerSession`: each learner is loaded once, every
message of the batch is decided against the state the earlier ones left, and all new events are
written in one transaction together with the intake's bookkeeping (see `ledger.store`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.postgres import PostgresFactory

from ledger.domain import (
    Learner,
    Policy,
    Price,
    Specialization,
    learner_aggregate_id,
    specialization_aggregate_id,
)
from ledger.domain.learner_state import Intent
from ledger.errors import SpecializationExistsError, UnknownSpecializationError
from ledger.store import IntakeBookkeeping, LedgerRecorder

APPLICATION_NAME = "ledger"


class Ledger(Application):  # type: ignore[type-arg]
    """The enrollment ledger's event-sourced application (its tables are named `ledger_*`)."""

    name = APPLICATION_NAME
    env: ClassVar[dict[str, str]] = {
        "PROCESS_RECORDER_TOPIC": "ledger.store:LedgerRecorder",
        "TRANSCODER_TOPIC": "ledger.transcoder:FastJSONTranscoder",
    }

    def construct_recorder(self) -> ApplicationRecorder:
        # On PostgreSQL, the recorder that also writes intake bookkeeping in the events'
        # transaction; elsewhere (the in-memory store of unit tests) the library's default.
        if isinstance(self.factory, PostgresFactory):
            return self.factory.process_recorder()
        return super().construct_recorder()

    @property
    def ledger_recorder(self) -> LedgerRecorder:
        """The PostgreSQL recorder; only the intake and relay, which need PostgreSQL, ask for it."""
        if not isinstance(self.recorder, LedgerRecorder):
            msg = "this ledger is not stored in PostgreSQL"
            raise TypeError(msg)
        return self.recorder

    def session(self, cache: LearnerCache | None = None) -> LedgerSession:
        """A unit of work: decide many commands, then `commit()` them in one transaction."""
        return LedgerSession(self, cache)

    def load_many(self, aggregate_ids: Iterable[UUID]) -> dict[UUID, Learner | Specialization]:
        """Rebuild many aggregates from one query (PostgreSQL), or one by one elsewhere."""
        ids = list(dict.fromkeys(aggregate_ids))
        found: dict[UUID, Learner | Specialization] = {}
        if isinstance(self.recorder, LedgerRecorder):
            return self.aggregates_from(self.recorder.select_events_for(ids))
        for aggregate_id in ids:
            try:
                found[aggregate_id] = self.repository.get(aggregate_id)
            except AggregateNotFoundError:
                continue
        return found

    def aggregates_from(
        self, stored: Mapping[UUID, Sequence[StoredEvent]]
    ) -> dict[UUID, Learner | Specialization]:
        """Each aggregate rebuilt from its stored events (all of them, in version order)."""
        found: dict[UUID, Learner | Specialization] = {}
        for aggregate_id, events in stored.items():
            aggregate: Any = None
            for stored_event in events:
                domain_event: Any = self.mapper.to_domain_event(stored_event)
                aggregate = domain_event.mutate(aggregate)
            found[aggregate_id] = aggregate
        return found

    # One call per command, each in its own transaction: for tests, tools and the demo.

    def publish_specialization(self, **fields: Any) -> None:
        with self.session() as session:
            session.publish_specialization(**fields)

    def enroll(self, learner_id: str, specialization_id: str, intent: Intent, at: datetime) -> None:
        with self.session() as session:
            session.enroll(learner_id, specialization_id, intent, at)

    def record_grade(
        self, learner_id: str, course_id: str, grade: Decimal, passed: bool, at: datetime
    ) -> None:
        with self.session() as session:
            session.record_grade(learner_id, course_id, grade, passed, at)

    def get_learner(self, learner_id: str) -> Learner | None:
        try:
            learner: Learner = self.repository.get(learner_aggregate_id(learner_id))
        except AggregateNotFoundError:
            return None
        return learner

    def get_specialization(self, specialization_id: str) -> Specialization | None:
        try:
            spec: Specialization = self.repository.get(
                specialization_aggregate_id(specialization_id)
            )
        except AggregateNotFoundError:
            return None
        return spec


class LearnerCache:
    """Learners kept between batches by the one worker that owns their partition.

    Only learners are cached: a learner's messages all come through one partition, so one
    worker writes them, and a stale entry (after a rebalance) only makes the save fail on its
    version, after which the batch's entries are evicted and the batch decided again. Catalog
    aggregates are written by whichever worker owns the catalog's partition, so they are
    always read fresh.
    """

    def __init__(self, maxsize: int = 50_000) -> None:
        self.maxsize = maxsize
        self._learners: OrderedDict[UUID, Learner] = OrderedDict()

    def get(self, aggregate_id: UUID) -> Learner | None:
        learner = self._learners.get(aggregate_id)
        if learner is not None:
            self._learners.move_to_end(aggregate_id)
        return learner

    def put(self, learner: Learner) -> None:
        self._learners[learner.id] = learner
        self._learners.move_to_end(learner.id)
        while len(self._learners) > self.maxsize:
            self._learners.popitem(last=False)

    def evict(self, aggregate_ids: Iterable[UUID]) -> None:
        for aggregate_id in aggregate_ids:
            self._learners.pop(aggregate_id, None)

    def clear(self) -> None:
        self._learners.clear()

    def __len__(self) -> int:
        return len(self._learners)


class LedgerSession:
    """Decides a batch of commands against aggregates loaded once, then saves them together.

    A command either changes aggregates (events pending until `commit`) or raises a
    `LedgerError` before changing anything, so one refused command never taints the batch.
    """

    def __init__(self, ledger: Ledger, cache: LearnerCache | None = None) -> None:
        self.ledger = ledger
        self.cache = cache
        self._aggregates: dict[UUID, Learner | Specialization] = {}
        self._missing: set[UUID] = set()
        #: The inbound type being handled, recorded on a learner it registers (E0).
        self.message_type: str | None = None

    def __enter__(self) -> LedgerSession:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.commit()

    def commit(self, intake: IntakeBookkeeping | None = None) -> int:
        """Write every pending event, and the intake's bookkeeping, in one transaction.

        Returns the number of events written.
        """
        aggregates = list(self._aggregates.values())
        pending = sum(len(a.pending_events) for a in aggregates)
        kwargs: dict[str, Any] = {}
        if intake is not None and not intake.is_empty():
            kwargs["intake"] = intake
        try:
            if pending or kwargs:
                self.ledger.save(*aggregates, **kwargs)
        except BaseException:
            self.discard()
            raise
        if self.cache is not None:
            for aggregate in aggregates:
                if isinstance(aggregate, Learner):
                    self.cache.put(aggregate)
        return pending

    def discard(self) -> None:
        """Forget this session's aggregates everywhere: their state may hold unsaved events."""
        if self.cache is not None:
            self.cache.evict(self._aggregates)
        self._aggregates.clear()
        self._missing.clear()

    def prefetch(self, aggregate_ids: Iterable[UUID]) -> None:
        """Load many aggregates at once (cache first, then one query for the rest)."""
        wanted = self.uncached(aggregate_ids)
        self.adopt(wanted, self.ledger.load_many(wanted))

    def uncached(self, aggregate_ids: Iterable[UUID]) -> list[UUID]:
        """Of `aggregate_ids`, those this session must load: not held yet, nor known missing,
        nor in the cache (those it takes from there)."""
        wanted = [
            i
            for i in dict.fromkeys(aggregate_ids)
            if i not in self._aggregates and i not in self._missing
        ]
        if self.cache is not None:
            for aggregate_id in list(wanted):
                cached = self.cache.get(aggregate_id)
                if cached is not None:
                    self._aggregates[aggregate_id] = cached
                    wanted.remove(aggregate_id)
        return wanted

    def adopt(
        self, wanted: Iterable[UUID], loaded: Mapping[UUID, Learner | Specialization]
    ) -> None:
        """Hold the aggregates loaded for `wanted` (`uncached`); the others do not exist yet."""
        for aggregate_id in wanted:
            if aggregate_id in loaded:
                self._aggregates[aggregate_id] = loaded[aggregate_id]
            else:
                self._missing.add(aggregate_id)

    def _load(self, aggregate_id: UUID) -> Learner | Specialization | None:
        if aggregate_id in self._aggregates:
            return self._aggregates[aggregate_id]
        if aggregate_id in self._missing:
            return None
        if self.cache is not None:
            cached = self.cache.get(aggregate_id)
            if cached is not None:
                self._aggregates[aggregate_id] = cached
                return cached
        try:
            aggregate: Learner | Specialization = self.ledger.repository.get(aggregate_id)
        except AggregateNotFoundError:
            self._missing.add(aggregate_id)
            return None
        self._aggregates[aggregate_id] = aggregate
        return aggregate

    def _keep(self, aggregate: Learner | Specialization) -> None:
        self._aggregates[aggregate.id] = aggregate
        self._missing.discard(aggregate.id)

    def learner(self, learner_id: str, at: datetime) -> Learner:
        """The learner, registered now if this is the first message naming them (E0)."""
        found = self._load(learner_aggregate_id(learner_id))
        if isinstance(found, Learner):
            return found
        learner = Learner.register(learner_id, at, self.message_type)
        self._keep(learner)
        return learner

    def specialization(self, specialization_id: str) -> Specialization | None:
        found = self._load(specialization_aggregate_id(specialization_id))
        return found if isinstance(found, Specialization) else None

    def _existing_specialization(self, specialization_id: str) -> Specialization:
        spec = self.specialization(specialization_id)
        if spec is None:
            raise UnknownSpecializationError(
                f"specialization {specialization_id!r} was never published: publish it "
                "(ledger.specialization.published.v1) before revising or retiring it"
            )
        return spec

    # Catalog (C1-C3)

    def publish_specialization(
        self,
        *,
        specialization_id: str,
        title: str,
        partners: tuple[str, ...],
        language: str,
        courses: tuple[str, ...],
        capstone_course_id: str,
        price: Price | None = None,
        policy: Policy | None = None,
        at: datetime,
    ) -> None:
        fields: Mapping[str, Any] = {
            "title": title,
            "partners": tuple(partners),
            "language": language,
            "courses": tuple(courses),
            "capstone_course_id": capstone_course_id,
            "price": price or Price(),
            "policy": policy or Policy(),
        }
        existing = self.specialization(specialization_id)
        if existing is not None:
            if existing.is_same_publication(**fields):
                return
            raise SpecializationExistsError(
                f"specialization {specialization_id!r} is already published with other "
                "content: send ledger.specialization.revised.v1 to change its curriculum"
            )
        self._keep(Specialization.publish(specialization_id=specialization_id, at=at, **fields))

    def revise_specialization(
        self,
        *,
        specialization_id: str,
        courses: tuple[str, ...],
        capstone_course_id: str,
        price: Price | None,
        at: datetime,
    ) -> None:
        self._existing_specialization(specialization_id).revise(
            courses=tuple(courses), capstone_course_id=capstone_course_id, price=price, at=at
        )

    def retire_specialization(self, *, specialization_id: str, at: datetime) -> None:
        self._existing_specialization(specialization_id).retire(at=at)

    # Enrollment (E0-E2)

    def enroll(self, learner_id: str, specialization_id: str, intent: Intent, at: datetime) -> None:
        learner = self.learner(learner_id, at)
        learner.enroll(self.specialization(specialization_id), specialization_id, intent, at)

    def unenroll(self, learner_id: str, specialization_id: str, at: datetime) -> None:
        self.learner(learner_id, at).unenroll(specialization_id, at)

    def change_intent(
        self, learner_id: str, specialization_id: str, intent: Intent, at: datetime
    ) -> None:
        self.learner(learner_id, at).change_intent(specialization_id, intent, at)

    # Courses, payments, identity, certificates (K1-K6, P1-P5, I1)

    def record_grade(
        self, learner_id: str, course_id: str, grade: Decimal, passed: bool, at: datetime
    ) -> None:
        self.learner(learner_id, at).record_grade(course_id, grade, passed, at)

    def capture_payment(
        self,
        learner_id: str,
        payment_id: str,
        course_id: str,
        amount: Decimal,
        currency: str,
        at: datetime,
    ) -> None:
        self.learner(learner_id, at).capture_payment(payment_id, course_id, amount, currency, at)

    def request_refund(self, learner_id: str, payment_id: str, at: datetime) -> None:
        self.learner(learner_id, at).request_refund(payment_id, at)

    def charge_back(self, learner_id: str, payment_id: str, at: datetime) -> None:
        self.learner(learner_id, at).charge_back(payment_id, at)

    def grant_aid(self, learner_id: str, course_id: str, at: datetime) -> None:
        self.learner(learner_id, at).grant_aid(course_id, at)

    def verify_identity(
        self, learner_id: str, method: str, expires_at: datetime | None, at: datetime
    ) -> None:
        self.learner(learner_id, at).verify_identity(method, expires_at, at)

    def reject_identity(self, learner_id: str, reason: str, at: datetime) -> None:
        self.learner(learner_id, at).reject_identity(reason, at)

    def revoke_identity(self, learner_id: str, reason: str, at: datetime) -> None:
        self.learner(learner_id, at).revoke_identity(reason, at)

    def revoke_certificate(
        self, learner_id: str, certificate_id: str, reason: str, at: datetime
    ) -> None:
        self.learner(learner_id, at).revoke_certificate(certificate_id, reason, at)
