"""Support staff's commands: where a learner is and why there is no certificate yet, whose a
verification code is, and the retention figures. Each answers from the read models through the
same query the HTTP API uses, so the two never disagree."""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.entrypoints.cli.console import (
    CodeArg,
    JsonOption,
    LearnerArg,
    SpecializationArg,
    checked_id,
    command_group,
    err,
    not_found,
    out,
    print_document,
    print_lines,
    question_settings,
    record_read,
    services,
)

learner_app = command_group("Questions support staff ask about learners.")
certificate_app = command_group("Certificates by verification code.")
stats_app = command_group("Figures across learners.")


@learner_app.command("show")
def learner_show(learner_id: LearnerArg, as_json: JsonOption = False) -> None:
    """Where a learner is in each specialization they enrolled in."""
    from ledger.entrypoints import bootstrap  # noqa: PLC0415 - imported when the command runs
    from projections.read_models.learner_progress import learner_progress  # noqa: PLC0415

    with bootstrap.connect(services(question_settings())) as conn:
        record_read(conn, learner_id, "ledger learner show")
        progress = learner_progress(conn, learner_id)
    if progress is None:
        raise not_found(f"learner {learner_id!r} is not known to the ledger (or not projected yet)")
    if as_json:
        print_document(progress)
        return
    from ledger.entrypoints.views import render_progress  # noqa: PLC0415

    render_progress(out(), progress)


@learner_app.command("why")
def learner_why(
    learner_id: LearnerArg, specialization_id: SpecializationArg, as_json: JsonOption = False
) -> None:
    """Is the learner eligible for the specialization certificate, and if not, what is missing."""
    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from projections.read_models.eligibility import NotEnrolledError, eligibility  # noqa: PLC0415

    with bootstrap.connect(services(question_settings())) as conn:
        record_read(conn, learner_id, "ledger learner why")
        try:
            answer = eligibility(conn, learner_id, specialization_id)
        except NotEnrolledError as error:
            raise not_found(str(error)) from None
    if answer is None:
        raise not_found(f"learner {learner_id!r} is not known to the ledger (or not projected yet)")
    if as_json:
        print_document(answer)
        return
    from ledger.entrypoints.views import render_eligibility  # noqa: PLC0415

    render_eligibility(out(), answer)


@certificate_app.command("verify")
def certificate_verify(code: CodeArg, as_json: JsonOption = False) -> None:
    """Whose certificate a verification code is, for what, and whether it is still valid."""
    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from projections.read_models import certificates  # noqa: PLC0415

    with bootstrap.connect(services(question_settings())) as conn:
        found = certificates.verify(conn, code)
    if found is None:
        raise not_found(f"no certificate has the verification code {code!r}")
    if as_json:
        print_document(found)
        return
    from ledger.entrypoints.views import render_certificate  # noqa: PLC0415

    render_certificate(out(), found)


@stats_app.command("retention")
def stats_retention(
    specialization: Annotated[
        str | None, typer.Option(help="Only this specialization.", callback=checked_id)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Completion per specialization and enrollment month: of all, of intent, of payers."""
    from ledger.entrypoints import bootstrap  # noqa: PLC0415
    from projections.read_models import retention  # noqa: PLC0415

    with bootstrap.connect(services(question_settings())) as conn:
        rows = retention.funnel(conn, specialization)
    if as_json:
        print_lines(r.as_dict() for r in rows)
        return
    if not rows:
        err().print("no enrollments yet")
        return
    from ledger.entrypoints.views import render_funnel  # noqa: PLC0415

    render_funnel(out(), rows)
