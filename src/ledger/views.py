"""Human renderings of read-model answers, shared by the CLI and the demo."""

from __future__ import annotations

from rich.console import Console

from projections.learner_progress import LearnerProgress


def render_progress(out: Console, progress: LearnerProgress) -> None:
    """Print a learner's progress as support staff read it."""
    out.print(
        f"[bold]{progress.learner_id}[/bold]  registered "
        f"{progress.registered_at:%Y-%m-%d}, last activity {progress.updated_at:%Y-%m-%d}"
    )
    if not progress.enrollments:
        out.print("  no enrollments")
    for e in progress.enrollments:
        state = "active" if e.active else f"ended {e.ended_at:%Y-%m-%d}"
        out.print(
            f"  [bold]{e.title}[/bold] ({e.specialization_id}, curriculum v"
            f"{e.curriculum_version}) intent {e.intent}, {state}: "
            f"{e.courses_passed}/{e.courses_total} passed, {e.percent_complete:.0f}%"
        )
        for c in e.courses:
            mark = "passed" if c.passed else ("graded, not passed" if c.graded else "not graded")
            label = f"{c.course_id} (capstone)" if c.is_capstone else c.course_id
            grade = f" grade {c.grade}" if c.grade is not None else ""
            out.print(f"    {label:<40} {mark}{grade}")
    for r in progress.refusals:
        out.print(f"  refused {r.request} {r.subject} on {r.at:%Y-%m-%d}: {r.reason} ({r.detail})")
