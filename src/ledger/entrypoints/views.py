"""Human renderings of read-model answers, shared by the CLI and the demo."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ledger.audit.history import LearnerHistory
from ledger.domain.reasons import in_words
from projections.read_models.certificates import Certificate
from projections.read_models.eligibility import Eligibility
from projections.read_models.learner_progress import LearnerProgress
from projections.read_models.retention import FunnelRow


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
            f"  no to {r.request} {r.subject} on {r.at:%Y-%m-%d}: {in_words(r.reason)}"
            f" [{r.reason}] ({r.detail})",
            markup=False,
        )


def eligibility_verdict(answer: Eligibility) -> str:
    """The verdict on a specialization certificate in the words support staff read out, shared
    by `ledger learner why` and the console: certified, being issued, or how far along."""
    if answer.certified:
        return f"certified, verification code {answer.verification_code}"
    if answer.eligible:
        return "eligible; the certificate is being issued"
    return f"not eligible yet ({answer.percent_complete:.0f}% complete)"


def render_eligibility(out: Console, answer: Eligibility) -> None:
    """Print why a learner has (or has not) the specialization certificate."""
    head = f"[bold]{answer.learner_id}[/bold] in [bold]{answer.title}[/bold]"
    head += f" ({answer.specialization_id}), as of {answer.as_of:%Y-%m-%d}:"
    out.print(f"{head} {eligibility_verdict(answer)}")
    for item in answer.missing:
        out.print(f"  - {item.message}", markup=False)


def render_certificate(out: Console, cert: Certificate) -> None:
    """Print what a verification code proves."""
    what = "specialization" if cert.kind == "specialization" else "course"
    out.print(
        f"[bold]{cert.verification_code}[/bold]: {what} certificate for {cert.subject}, "
        f"learner {cert.learner_id}, earned {cert.earned_at:%Y-%m-%d}"
    )
    if cert.status == "revoked" and cert.revoked_at is not None:
        by = " by trust & safety" if cert.revoked_by_trust_and_safety else ""
        out.print(
            f"  [red]REVOKED[/red]{by} on {cert.revoked_at:%Y-%m-%d}: "
            f"{cert.revoked_reason} ({cert.revoked_detail})"
        )
    else:
        out.print("  [green]VALID[/green]")
    out.print(f"  evidence: {', '.join(cert.evidence)}", markup=False)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


#: Below this many columns the funnel is printed one specialization at a time (its id as the
#: title), so the months and figures stay whole on an 80-column terminal.
_FUNNEL_WIDE = 110


def render_funnel(out: Console, rows: list[FunnelRow]) -> None:
    """Print the retention funnel per specialization and enrollment month."""
    if out.width >= _FUNNEL_WIDE:
        out.print(_funnel_table("Retention: completion by enrollment month", rows, True))
        return
    by_spec: dict[str, list[FunnelRow]] = {}
    for r in rows:
        by_spec.setdefault(r.specialization_id, []).append(r)
    for spec, spec_rows in by_spec.items():
        out.print(_funnel_table(f"Retention of {spec}: completion by month", spec_rows, False))


def _funnel_table(title: str, rows: list[FunnelRow], with_spec: bool) -> Table:
    table = Table(title=title)
    # Short headers, so eight columns fit 80: enrolled, stated certificate intent, paid for a
    # course, completed (a live specialization certificate), then completed as % of each.
    columns = ["month", "enrolled", "intent", "payers", "done", "% all", "% intent", "% payers"]
    if with_spec:
        table.add_column("specialization", overflow="fold")
    for column in columns:
        table.add_column(column, justify="right", no_wrap=column == "month")
    for r in rows:
        cells = [
            f"{r.month:%Y-%m}",
            f"{r.registered:,}",
            f"{r.with_intent:,}",
            f"{r.payers:,}",
            f"{r.completed:,}",
            _rate(r.completion_rate),
            _rate(r.intent_completion_rate),
            _rate(r.payer_completion_rate),
        ]
        table.add_row(*([r.specialization_id] if with_spec else []), *cells)
    return table


def render_history(out: Console, history: LearnerHistory) -> None:
    """Print a learner's history, then (with --as-of) what the ledger derived from it."""
    table = Table(title=f"History of {history.learner_id}")
    for column in ("v", "business time", "recorded", "event", "data / reason"):
        table.add_column(column)
    for e in history.events:
        name = e.type.removeprefix("ledger.").rsplit(".v", 1)[0]
        shown = {k: v for k, v in e.data.items() if k not in ("previous_hash", "at")}
        detail = (
            f"NO: {e.refusal}" if e.refusal else ", ".join(f"{k}={v}" for k, v in shown.items())
        )
        table.add_row(
            str(e.version),
            f"{e.business_time:%Y-%m-%d %H:%M}",
            f"{e.recorded_time:%Y-%m-%d %H:%M:%S}",
            name,
            detail,
        )
    out.print(table)
    state = history.state
    if state is None:
        return
    out.print(f"\n[bold]As the ledger knew it at {state.as_of.isoformat()}[/bold]")
    if state.progress is None:
        out.print("  nothing recorded yet for this learner")
        return
    render_progress(out, state.progress)
    for answer in state.eligibility:
        render_eligibility(out, answer)
    for cert in state.certificates:
        render_certificate(out, cert)
