"""The simulated cohort of `ledger demo`: what a MOOC platform's services send about its learners.

The behavioural model follows the platform's figures: 4% of all, 24% of those with intent, 63% of
payers (DESIGN §1: of everyone who registers, 4% earn the specialization certificate; of those who
state a certificate intent, 24%; of those who pay, 63%). Most learners register and drift away
after 0 to 2 courses. Each learner follows one `Journey`:

- completes, paying: verifies identity (method "government_id", again when a verification nears
  its 365-day expiry), pays for each course and the capstone as it starts, passes each (some at a
  second attempt) and sends the capstone grade only after every course is certified (K2);
- completes on financial aid: the same, with aid granted instead of payments (P3);
- pays, then drops / on aid, then drops: funded for the first few courses, never the capstone;
- wants a certificate, never pays: takes 0 to 4 courses, some verify identity;
- audits and drifts: takes 0 to 2 courses (a few take more), some unenroll.

Of those who end up wanting a certificate, some start by auditing and change their intent after
the first course; a funded one then verifies and pays for that course after the fact (K1 counts
in whatever order the facts arrive). Intent only ever changes from audit to certificate, so the
intent the enrollments record at the end is the intent ever stated.

The journeys' shares are derived from the three figures plus one assumption where they are silent
(a tenth of completers are on financial aid, and learners on aid complete as often as payers).
The shares become head counts by largest remainder and the journeys are shuffled among the
learners: a stratified sample rather than independent draws, because only about 114 of 2,000
learners pay, and independent draws would move the payers' figure by some 4.5 points (one standard
deviation) from seed to seed. With 2,000 learners the ledger computes 4.0%, 24.0% and 63.2%
whatever the seed: a journey fixes its outcome (intent, funding, completion), the seed only how it
unfolds (curriculum timing, grades, retakes, refusals).

The rules also say no, and the cohort shows it: a second enrollment request while enrolled
(`already_enrolled`), a refund asked for long after the window (`refund_window_closed`), a
capstone grade from someone with no certified course (K2); and the identity service rejects some
documents before it verifies them. One malformed message comes last: it is kept with its reason,
not lost.

Pure: the seed decides everything. `run_id` only goes into message and payment ids; by default it
is taken from the clock so that a second demo against the same broker is not deduplicated away.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from commands.cloudevents import structured
from ledger.broker import Headers, OutRecord
from ledger.domain.learner_state import Intent

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SOURCE = "urn:demo:platform"


def _structured_headers() -> Headers:
    """The headers of a structured-mode CloudEvent; a new list for each record, which owns it."""
    return [("content-type", b"application/cloudevents+json")]


@dataclass(frozen=True)
class CatalogEntry:
    """One specialization of the demo catalog, published with the default price and policy."""

    specialization_id: str
    title: str
    partners: tuple[str, ...]
    courses: tuple[str, ...]
    capstone: str


#: The three specializations of the launch announcement.
CATALOG = (
    CatalogEntry(
        "jhu-data-science",
        "Data Science",
        ("Johns Hopkins University",),
        (
            "ds-toolbox",
            "ds-r-programming",
            "ds-getting-cleaning-data",
            "ds-exploratory-analysis",
            "ds-reproducible-research",
            "ds-statistical-inference",
            "ds-regression-models",
            "ds-practical-machine-learning",
            "ds-data-products",
        ),
        "ds-capstone",
    ),
    CatalogEntry(
        "android-app-development",
        "Android App Development",
        ("Vanderbilt University", "University of Maryland, College Park"),
        (
            "android-handheld-1",
            "android-handheld-2",
            "android-concurrency",
            "android-communication",
            "android-cloud-services",
        ),
        "android-capstone",
    ),
    CatalogEntry(
        "cet-effective-teaching",
        "Foundations of Effective Teaching",
        ("Commonwealth Education Trust",),
        (
            "teach-introduction",
            "teach-being-a-teacher",
            "teach-learners-and-learning",
            "teach-planning",
            "teach-curriculum",
            "teach-assessment",
            "teach-classroom-practice",
            "teach-being-a-professional",
        ),
        "teach-capstone",
    ),
)

#: The platform's figures: the share of learners who earn the specialization certificate, of all,
#: of those who state a certificate intent, and of those who pay.
COMPLETE_OF_ALL = 0.04
COMPLETE_OF_INTENT = 0.24
COMPLETE_OF_PAYERS = 0.63
#: An assumption where the figures are silent: completers whose courses financial aid covers.
AID_SHARE_OF_COMPLETERS = 0.10

#: Of the learners who end up wanting a certificate, those who start by auditing.
UPGRADE_SHARE = 0.2
#: Of learners with a certificate intent who never pay, those who verify identity anyway.
VERIFY_WITHOUT_FUNDING_SHARE = 0.3
#: How many courses a drifting learner takes, 0 to 4: weights.
AUDITOR_COURSE_WEIGHTS = (45, 30, 15, 6, 4)
INTENDER_COURSE_WEIGHTS = (30, 30, 20, 12, 8)
#: A funded learner who drops often stops in the middle of the last course started.
STOPS_MID_COURSE_SHARE = 0.4
#: Completers who fail a course once and pass it at the second attempt.
RETAKE_SHARE = 0.12
#: Grades are whole percents; the grading service passes from this one.
PASS_PERCENT = 70
#: A verification lasts 365 days (I1); the platform asks for a new one after this many.
REVERIFY_AFTER = timedelta(days=270)
IDENTITY_REJECTED_SHARE = 0.1
#: The refusal cases: shares of the learners they may happen to.
LATE_REFUND_SHARE = 0.2  # of payers
EARLY_CAPSTONE_SHARE = 0.03  # of drifting learners who took a course
UNENROLL_SHARE = 0.1  # of drifting learners
SECOND_ENROLLMENT_SHARE = 1 / 7  # of those still enrolled


class Journey(Enum):
    """What one learner of the cohort does, from enrollment on."""

    COMPLETES_PAYING = "completes, paying"
    COMPLETES_ON_AID = "completes on financial aid"
    PAYS_AND_DROPS = "pays, then drops"
    AID_AND_DROPS = "on aid, then drops"
    INTENDS_AND_DRIFTS = "wants a certificate, never pays"
    AUDITS_AND_DRIFTS = "audits and drifts"

    @property
    def completes(self) -> bool:
        return self in (Journey.COMPLETES_PAYING, Journey.COMPLETES_ON_AID)

    @property
    def drifts(self) -> bool:
        return self in (Journey.INTENDS_AND_DRIFTS, Journey.AUDITS_AND_DRIFTS)

    @property
    def funding(self) -> str | None:
        """How the courses are paid for: "payment", "aid" or not at all (None)."""
        if self in (Journey.COMPLETES_PAYING, Journey.PAYS_AND_DROPS):
            return "payment"
        if self in (Journey.COMPLETES_ON_AID, Journey.AID_AND_DROPS):
            return "aid"
        return None


def journey_shares() -> dict[Journey, float]:
    """Each journey's share of the cohort, so that the cohort has the platform's figures.

    Everyone funded ends with a certificate intent, so the learners with intent are the completers
    over 24%, and the funded dropouts are what the 63% leaves of the funded; those with intent
    who are left over never pay; everyone else audits.
    """
    paying = COMPLETE_OF_ALL * (1 - AID_SHARE_OF_COMPLETERS)
    on_aid = COMPLETE_OF_ALL * AID_SHARE_OF_COMPLETERS
    dropouts_per_completer = (1 - COMPLETE_OF_PAYERS) / COMPLETE_OF_PAYERS
    with_intent = COMPLETE_OF_ALL / COMPLETE_OF_INTENT
    shares = {
        Journey.COMPLETES_PAYING: paying,
        Journey.COMPLETES_ON_AID: on_aid,
        Journey.PAYS_AND_DROPS: paying * dropouts_per_completer,
        Journey.AID_AND_DROPS: on_aid * dropouts_per_completer,
    }
    shares[Journey.INTENDS_AND_DRIFTS] = with_intent - sum(shares.values())
    shares[Journey.AUDITS_AND_DRIFTS] = 1 - with_intent
    return shares


def head_counts(shares: Mapping[Journey, float], total: int) -> dict[Journey, int]:
    """Largest remainder: whole counts summing to `total`, each less than one from its share."""
    exact = {journey: share * total for journey, share in shares.items()}
    counts = {journey: int(value) for journey, value in exact.items()}
    by_remainder = sorted(exact, key=lambda j: exact[j] - counts[j], reverse=True)
    for journey in by_remainder[: total - sum(counts.values())]:
        counts[journey] += 1
    return counts


def _days(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(days=rng.randint(low, high))


def _hours(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(hours=rng.randint(low, high))


class _Script:
    """One learner's messages as the platform's services would send them, with their times.

    Each message keeps its business time so the cohort's messages can be merged in time order.
    """

    def __init__(
        self, rng: random.Random, topic: str, run_id: str, learner_id: str, entry: CatalogEntry
    ) -> None:
        self.rng = rng
        self.topic = topic
        self.run_id = run_id
        self.learner_id = learner_id
        self.entry = entry
        self.messages: list[tuple[datetime, OutRecord]] = []
        self.last = START
        self.verified_at: datetime | None = None
        self.first_payment_id: str | None = None

    def send(self, event_type: str, when: datetime, **data: Any) -> None:
        value = structured(
            event_type,
            SOURCE,
            f"demo-{self.run_id}-{self.learner_id}-{len(self.messages) + 1}",
            when,
            self.learner_id,
            {"learner_id": self.learner_id, **data},
        )
        record = OutRecord(self.topic, self.learner_id.encode(), value, _structured_headers())
        self.messages.append((when, record))
        self.last = max(self.last, when)

    def enroll(self, when: datetime, intent: Intent) -> None:
        spec = self.entry.specialization_id
        self.send("ledger.learner.enrolled.v1", when, specialization_id=spec, intent=intent.value)

    def upgrade(self, when: datetime) -> None:
        spec = self.entry.specialization_id
        intent = Intent.CERTIFICATE.value
        self.send("ledger.learner.intent_changed.v1", when, specialization_id=spec, intent=intent)

    def verify(self, when: datetime) -> None:
        """Identity verified; some first send a document the identity service cannot read."""
        if self.rng.random() < IDENTITY_REJECTED_SHARE:
            self.send("ledger.identity.rejected.v1", when, reason="document unreadable")
            when += _days(self.rng, 1, 3)
        self.send("ledger.identity.verified.v1", when, method="government_id")
        self.verified_at = when

    def keep_verified(self, when: datetime) -> None:
        """Verify again before the last verification expires, so K1 and K3 find one valid."""
        if self.verified_at is not None and when - self.verified_at > REVERIFY_AFTER:
            self.verify(when)

    def fund(self, funding: str, index: int, course: str, when: datetime) -> None:
        if funding == "aid":
            self.send("ledger.aid.granted.v1", when, course_id=course)
            return
        payment_id = f"pay-{self.run_id}-{self.learner_id}-{index}"
        self.first_payment_id = self.first_payment_id or payment_id
        self.send(
            "ledger.payment.captured.v1",
            when,
            payment_id=payment_id,
            course_id=course,
            amount="49.00",
            currency="USD",
        )

    def grade(self, course: str, when: datetime, percent: int) -> None:
        self.send(
            "ledger.course.graded.v1",
            when,
            course_id=course,
            grade=f"{percent / 100:.2f}",
            passed=percent >= PASS_PERCENT,
        )

    def take(self, course: str, when: datetime, *, must_pass: bool) -> None:
        """Finish a course; one who must pass may fail once first and pass the retake."""
        rng = self.rng
        if not must_pass:
            self.grade(course, when, rng.randint(40, 100))
            return
        if rng.random() < RETAKE_SHARE:
            self.grade(course, when, rng.randint(40, PASS_PERCENT - 1))
            when += _days(rng, 14, 28)
        self.grade(course, when, rng.randint(PASS_PERCENT, 100))


class Cohort:
    """Builds the demo's messages, deterministically from a seed."""

    def __init__(self, learners: int, seed: int, topic: str, run_id: str | None = None) -> None:
        self.learners = learners
        self.seed = seed
        self.topic = topic
        self.run_id = run_id if run_id is not None else f"{seed}-{int(time.time())}"

    def catalog(self) -> list[OutRecord]:
        """The catalog messages, to be sent and applied before any learner's (E0)."""
        return [
            OutRecord(
                self.topic,
                entry.specialization_id.encode(),
                structured(
                    "ledger.specialization.published.v1",
                    SOURCE,
                    f"demo-{self.run_id}-{entry.specialization_id}",
                    START - timedelta(days=30),
                    entry.specialization_id,
                    {
                        "specialization_id": entry.specialization_id,
                        "title": entry.title,
                        "partners": list(entry.partners),
                        "language": "en",
                        "courses": list(entry.courses),
                        "capstone_course_id": entry.capstone,
                    },
                ),
                _structured_headers(),
            )
            for entry in CATALOG
        ]

    def _journeys(self, rng: random.Random) -> list[Journey]:
        """The journey of each learner: the head counts, shuffled."""
        counts = head_counts(journey_shares(), self.learners)
        journeys = [journey for journey, count in counts.items() for _ in range(count)]
        rng.shuffle(journeys)
        return journeys

    def learner_messages(self) -> list[OutRecord]:
        """Every learner's messages in business-time order, as the platform would send them."""
        rng = random.Random(self.seed)  # noqa: S311 - a simulation, not a secret
        timed: list[tuple[datetime, OutRecord]] = []
        for n, journey in enumerate(self._journeys(rng)):
            script = _Script(
                rng, self.topic, self.run_id, f"learner-{n + 1:04d}", CATALOG[n % len(CATALOG)]
            )
            self._follow(script, journey)
            timed.extend(script.messages)
        timed.sort(key=lambda message: message[0])  # stable: a learner's ties keep their order
        records = [record for _, record in timed]
        # One message no service should send: it is kept with its reason, not lost.
        records.append(
            OutRecord(self.topic, b"learner-0001", b'{"specversion": "1.0", "id": 7', [])
        )
        return records

    def _follow(self, script: _Script, journey: Journey) -> None:
        """Write one learner's messages along their journey, then the refusal cases."""
        rng = script.rng
        upgrades = journey is not Journey.AUDITS_AND_DRIFTS and rng.random() < UPGRADE_SHARE
        stated = (
            Intent.CERTIFICATE
            if journey is not Journey.AUDITS_AND_DRIFTS and not upgrades
            else Intent.AUDIT
        )
        enrolled = START + _days(rng, 0, 60) + timedelta(minutes=rng.randint(0, 24 * 60 - 1))
        script.enroll(enrolled, stated)
        if stated is Intent.CERTIFICATE and (
            journey.funding is not None or rng.random() < VERIFY_WITHOUT_FUNDING_SHARE
        ):
            script.verify(enrolled + _hours(rng, 1, 72))
        reach = self._reach(script, journey, upgrades)
        self._study(script, journey, reach, upgrades, enrolled + _hours(rng, 1, 48))
        self._refusals(script, journey, reach)

    @staticmethod
    def _reach(script: _Script, journey: Journey, upgrades: bool) -> int:
        """How many courses of the curriculum (the capstone last) the learner starts."""
        rng = script.rng
        courses = len(script.entry.courses)
        if journey.completes:
            return courses + 1
        if journey.funding is not None:  # never the capstone; most stop early
            return round(rng.triangular(1, courses, 1))
        weights = (
            INTENDER_COURSE_WEIGHTS
            if journey is Journey.INTENDS_AND_DRIFTS
            else AUDITOR_COURSE_WEIGHTS
        )
        reach = rng.choices(range(len(weights)), weights)[0]
        return max(reach, 1) if upgrades else reach  # an upgrade follows the first course

    @staticmethod
    def _study(
        script: _Script, journey: Journey, reach: int, upgrades: bool, start: datetime
    ) -> None:
        """The courses, one after another: funded as each starts, graded as each ends."""
        rng = script.rng
        funding = journey.funding
        curriculum = (*script.entry.courses, script.entry.capstone)
        for index, course in enumerate(curriculum[:reach]):
            script.keep_verified(start)
            audited_first = upgrades and index == 0
            if funding is not None and not audited_first:
                script.fund(funding, index, course, start + _hours(rng, 1, 24))
            last_of_dropout = not journey.completes and index == reach - 1
            if (
                funding is not None
                and last_of_dropout
                and not audited_first
                and rng.random() < STOPS_MID_COURSE_SHARE
            ):
                return  # funded, started, never finished
            script.take(course, start + _days(rng, 20, 45), must_pass=journey.completes)
            if audited_first:
                script.upgrade(script.last + _hours(rng, 1, 48))
                if funding is not None or rng.random() < VERIFY_WITHOUT_FUNDING_SHARE:
                    script.verify(script.last + _hours(rng, 1, 24))
                if funding is not None:  # the course already passed is paid for after the fact
                    script.fund(funding, index, course, script.last + _hours(rng, 1, 24))
            start = script.last + _days(rng, 0, 14)

    @staticmethod
    def _refusals(script: _Script, journey: Journey, reach: int) -> None:
        """Requests the rules turn down, each recorded with its reason in the learner's history."""
        rng = script.rng
        entry = script.entry
        if journey.funding == "payment" and rng.random() < LATE_REFUND_SHARE:
            script.send(
                "ledger.payment.refund_requested.v1",
                script.last + _days(rng, 30, 90),
                payment_id=script.first_payment_id,
            )
        if journey.drifts and reach > 0 and rng.random() < EARLY_CAPSTONE_SHARE:
            # No course certified (never paid), so K2 rejects the capstone grade.
            script.take(entry.capstone, script.last + _days(rng, 1, 30), must_pass=False)
        if journey.drifts and rng.random() < UNENROLL_SHARE:
            script.send(
                "ledger.learner.unenrolled.v1",
                script.last + _days(rng, 7, 60),
                specialization_id=entry.specialization_id,
            )
        elif rng.random() < SECOND_ENROLLMENT_SHARE:
            # Back after a while, forgetting they are enrolled: the rules say no, and say why.
            intent = Intent.AUDIT if journey is Journey.AUDITS_AND_DRIFTS else Intent.CERTIFICATE
            script.enroll(script.last + _days(rng, 1, 60), intent)
