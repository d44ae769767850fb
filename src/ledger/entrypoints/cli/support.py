"""Support staff's commands: where a learner is and why there is no certificate yet, whose a
verification code is, and the retention figures. Each answers from the read models through the
same query the HTTP API uses, so the two never disagree."""

from __future__ import annotations

import sys
from pathlib import Path
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


@certificate_app.command("credential")
def certificate_credential(
    code: CodeArg,
    to: Annotated[
        Path | None, typer.Option("--to", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """The certificate as a signed Open Badges 3.0 credential (VC-JOSE: a compact JWS)."""
    from ledger.credentials.issuing import Issuer  # noqa: PLC0415
    from ledger.entrypoints import bootstrap  # noqa: PLC0415

    found = question_settings()
    with bootstrap.connect(services(found)) as conn:
        token = Issuer(found).credential(conn, code)
    if token is None:
        raise not_found(f"no certificate has the verification code {code!r}")
    if to is None:
        sys.stdout.write(token + "\n")
    else:
        to.write_text(token + "\n", encoding="utf-8")
        err().print(f"wrote the credential of {code} to {to}", markup=False)


@certificate_app.command("check")
def certificate_check(
    credential: Annotated[Path, typer.Argument(help="A credential file (a compact JWS).")],
    status_list: Annotated[
        Path | None,
        typer.Option("--status-list", help="The status list (a compact JWS) to check against."),
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="The issuer's keys: a JWKS or did:web document (default: this ledger's own).",
        ),
    ] = None,
    fetch: Annotated[
        bool,
        typer.Option(
            "--fetch/--no-fetch", help="Fetch the status list from its address if not given."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check a credential offline: its signature, its structure and, with its status list,
    whether it was revoked. Exit 0 valid, 1 revoked, 3 not valid, 4 revocation not checked."""
    import json  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    from ledger.credentials.check import check, keys_of  # noqa: PLC0415

    def read(path: Path, what: str) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise typer.BadParameter(f"cannot read {what} {path}: {error}") from None

    if keys is not None:
        try:
            jwks = keys_of(json.loads(read(keys, "the keys")))
        except ValueError:
            raise typer.BadParameter(f"{keys} is not JSON (a JWKS or a DID document)") from None
    else:
        from ledger.credentials.issuing import Issuer  # noqa: PLC0415
        from ledger.settings import Settings  # noqa: PLC0415

        jwks = Issuer(Settings.from_env()).jwks()
    verdict = check(
        read(credential, "the credential"),
        jwks,
        datetime.now(UTC),
        read(status_list, "the status list") if status_list else None,
        _fetch if fetch else None,
    )
    if as_json:
        print_document({"verdict": verdict.word, "findings": verdict.findings})
    else:
        out().print(f"{verdict.word}: " + "; ".join(verdict.findings), markup=False)
    raise typer.Exit(verdict.status)


def _fetch(url: str) -> str:
    import httpx  # noqa: PLC0415

    answer = httpx.get(url, timeout=10, follow_redirects=True)
    answer.raise_for_status()
    return answer.text


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
