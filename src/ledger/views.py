"""Human renderings of read-model answers, shared by the CLI and the demo."""

from __future__ import annotations

from rich.console import Console

from projections.learner_progress import LearnerProgress


def render_progress(out: Console, progress: LearnerProgress) -> None:
    """Print a learner's progress as support staff read it."""
    identity = progress.identity
    if identity.verified:
        who = f"identity verified until {identity.valid_until:%Y-%m-%d}"
    elif identity.valid_until is not None:
        who = f"identity not valid (ended {identity.valid_until:%Y-%m-%d})"
    else:
        who = "identity never verified"
    out.print(
        f"[bold]{progress.learner_id}[/bold]  registered "
        f"{progress.registered_at:%Y-%m-%d}, last activity {progress.updated_at:%Y-%m-%d},"
        f" {who}"
    )
    if not progress.enrollments:
        out.print("  no enrollments")
    for e in progress.enrollments:
        state = "active" if e.active else f"ended {e.ended_at:%Y-%m-%d}"
        out.print(
            f"  [bold]{e.title}[/bold] ({e.specialization_id}, curriculum v"
            f"{e.curriculum_version}) intent {e.intent}, {state}: "
            f"{e.courses_certified}/{e.courses_total} certified, {e.percent_complete:.0f}%"
        )
        if e.certificate is not None:
            c = e.certificate
            status = (
                f"revoked {c.revoked_at:%Y-%m-%d} ({c.revoked_reason})" if c.revoked_at else "valid"
            )
            out.print(
                f"    specialization certificate {c.verification_code}, earned "
                f"{c.earned_at:%Y-%m-%d}, {status}"
            )
        for course in e.courses:
            label = f"{course.course_id} (capstone)" if course.is_capstone else course.course_id
            marks = [
                f"passed {course.grade}"
                if course.passed
                else (f"not passed {course.grade}" if course.grade is not None else "no grade"),
                "paid" if course.paid else "not paid",
                "certified" if course.certified else "not certified",
            ]
            out.print(f"    {label:<34} {', '.join(marks)}", markup=False)
    for r in progress.refusals:
        out.print(
            f"  no to {r.request} {r.subject} on {r.at:%Y-%m-%d}: {r.reason} ({r.detail})",
            markup=False,
        )
