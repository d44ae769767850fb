"""Delete one rule check at a time and prove some test notices (the rulebook's acceptance item).

Each mutation replaces one condition in the domain by a constant that switches the check off,
runs the unit tests, and expects at least one failure. Usage:
    .venv/bin/python scripts/mutation_check.py
It prints one line per mutation and exits non-zero if any mutation survives. It edits the
domain files in place while it runs (and restores them): commit nothing until it ends.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEARNER = ROOT / "src/ledger/domain/learner.py"
LEARNER_STATE = ROOT / "src/ledger/domain/learner_state.py"
SPEC = ROOT / "src/ledger/domain/specialization.py"

# (rule, file, text, replacement): the replacement switches that one check off.
MUTATIONS = [
    ("C1 course count", SPEC, "if not MIN_COURSES <= len(courses) <= MAX_COURSES:", "if False:"),
    ("C1 capstone in list", SPEC, "if capstone_course_id in courses:", "if False:"),
    ("C1 partners", SPEC, "if not partners:", "if False:"),
    ("C1 distinct courses", SPEC, "if len(set(courses)) != len(courses):", "if False:"),
    (
        "C3 retire once",
        SPEC,
        "if self.is_retired:\n            return",
        "if False:\n            return",
    ),
    ("E1 unknown", LEARNER, "if specialization is None:", "if False:"),
    ("E1/C3 retired", LEARNER, "if specialization.is_retired:", "if False:"),
    (
        "E1 already enrolled",
        LEARNER,
        "if self.active_enrollment(specialization_id) is not None:",
        "if False:",
    ),
    ("E2 unenroll", LEARNER, "if self.active_enrollment(specialization_id) is None:", "if False:"),
    (
        "E2 intent",
        LEARNER,
        'if enrollment is None:\n            self._refuse(\n                "change_intent"',
        'if False:\n            self._refuse(\n                "change_intent"',
    ),
    ("P1 no enrollment", LEARNER, "if not matching:", "if False:"),
    ("P1 price", LEARNER, "if not priced:", "if False:"),
    (
        "P2 same id",
        LEARNER,
        "if payment_id in self.payments:\n            return",
        "if False:\n            return",
    ),
    (
        "P2 duplicate",
        LEARNER,
        "if self.is_paid(course_id):\n            self._payment_to_be",
        "if False:\n            self._payment_to_be",
    ),
    (
        "P3 aid counts",
        LEARNER,
        "if course_id in self.aid:\n            granted_at",
        "if False:\n            granted_at",
    ),
    (
        "P4 unknown",
        LEARNER,
        "if payment is None:\n            refusal",
        "if False:\n            refusal",
    ),
    ("P4 refunded", LEARNER, "elif payment.state is PaymentState.REFUNDED:", "elif False:"),
    ("P4 charged back", LEARNER, "elif payment.state is PaymentState.CHARGED_BACK:", "elif False:"),
    (
        "P4 not counted",
        LEARNER,
        "elif payment.state is PaymentState.TO_BE_RETURNED:",
        "elif False:",
    ),
    (
        "P4 window",
        LEARNER,
        "elif at > days_after(payment.paid_at, payment.refund_window_days):",
        "elif False:",
    ),
    (
        "P4 certified",
        LEARNER,
        '        elif any(\n            c.kind == "course"',
        '        elif False and any(\n            c.kind == "course"',
    ),
    (
        "P5 revoke on chargeback",
        LEARNER,
        'if cert.kind == "course" and cert.is_live and cert.payment_id == payment_id:',
        "if False:",
    ),
    (
        "P5 unpay",
        LEARNER,
        "if payment_id in self.payments:\n            self.payments[payment_id].state = "
        "PaymentState.CHARGED_BACK",
        "if False:\n            self.payments[payment_id].state = PaymentState.CHARGED_BACK",
    ),
    (
        "I1 expiry",
        LEARNER_STATE,
        "return self.verified_at <= moment < self.ends_at",
        "return self.verified_at <= moment",
    ),
    ("I1 invalid expiry", LEARNER, "if expires <= at:", "if False:"),
    (
        "I1 revocation",
        LEARNER,
        "if verification.verified_at <= at and (ends is None or at < ends):",
        "if False:",
    ),
    (
        "I1 late revocation revokes",
        LEARNER,
        "if cert.is_live and verification and not verification.valid_at(cert.earned_at):",
        "if False:",
    ),
    ("I1 revocation recorded before", LEARNER, "min(later_revocations, default=None)", "None"),
    (
        "K1 passed",
        LEARNER,
        "if result is None or result.first_pass is None or paid is None:",
        "if result is None or paid is None:",
    ),
    (
        "K1 paid",
        LEARNER,
        "if result is None or result.first_pass is None or paid is None:",
        "if result is None or result.first_pass is None:",
    ),
    (
        "K1/K3 identity",
        LEARNER,
        "            if max(since, v.verified_at) < v.ends_at\n",
        "",
    ),
    (
        "K1 one live",
        LEARNER,
        "            if self.live_course_certificate(course_id) is not None:\n"
        "                continue",
        "            if False:\n                continue",
    ),
    ("K2 enrollment", LEARNER, "if not active:", "if False:"),
    (
        "K2 all courses",
        LEARNER,
        "            if not missing:\n                return None",
        "            if True:\n                return None",
    ),
    (
        "K2 policy",
        LEARNER,
        "if not enrollment.curriculum.policy.capstone_requires_all_courses:",
        "if False:",
    ),
    (
        "K3 active",
        LEARNER,
        "if not enrollment.is_active or any(c is None for c in certs):",
        "if any(c is None for c in certs):",
    ),
    (
        "K3 all certified",
        LEARNER,
        "if not enrollment.is_active or any(c is None for c in certs):",
        "if not enrollment.is_active or all(c is None for c in certs):",
    ),
    (
        "K3 once",
        LEARNER,
        "if self.specialization_certificates(enrollment.enrollment_id):",
        "if False:",
    ),
    ("K5 re-evaluate", LEARNER, "            if unsatisfied:", "            if False:"),
    (
        "K5 no blind cascade",
        LEARNER,
        "if self.live_course_certificate(self.certificates[c].subject) is None",
        "if True",
    ),
    (
        "K5 T&S final",
        LEARNER,
        "                continue  # trust & safety's revocation stands",
        "                pass  # trust & safety's revocation stands",
    ),
    (
        "K5 unknown",
        LEARNER,
        "if cert is None:\n            self._refuse(",
        "if False:\n            self._refuse(",
    ),
    (
        "K5 already revoked",
        LEARNER,
        "if not cert.is_live:\n            self._refuse(",
        "if False:\n            self._refuse(",
    ),
]


def run_tests() -> bool:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "tests/unit"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0


def main() -> int:
    survivors = []
    for rule, path, text, replacement in MUTATIONS:
        original = path.read_text()
        if original.count(text) != 1:
            print(f"?? {rule}: the text to mutate is not found exactly once")
            survivors.append(rule)
            continue
        path.write_text(original.replace(text, replacement))
        try:
            passed = run_tests()
        finally:
            path.write_text(original)
        print(f"{'SURVIVED' if passed else 'killed  '} {rule}")
        if passed:
            survivors.append(rule)
    print(f"{len(MUTATIONS) - len(survivors)}/{len(MUTATIONS)} mutations killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
