"""`schemas/`: a JSON Schema and an example for every inbound and outbound message type.

Both are generated from the pydantic models the intake (`commands.messages`) and the relay
(`ledger.outbound`) use, so the published contract cannot drift from the code: `ledger schemas`
writes them, and a test fails when a committed file differs from what the code generates.
Examples are built from one table of realistic field values and validated against their model
as they are generated.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from commands.messages import MESSAGE_TYPES, MessageData
from ledger.outbound import OUTBOUND_MODELS, SOURCE

T = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)

#: Example values by field name (shared by inbound and outbound examples).
FIELD_EXAMPLES: dict[str, Any] = {
    "specialization_id": "jhu-data-science",
    "title": "Data Science",
    "partners": ["Johns Hopkins University"],
    "language": "en",
    "courses": [f"ds-{n}" for n in range(1, 10)],
    "capstone_course_id": "ds-capstone",
    "learner_id": "learner-0042",
    "intent": "certificate",
    "course_id": "ds-3",
    "grade": "0.87",
    "passed": True,
    "payment_id": "pay-7f3a",
    "amount": "49.00",
    "price_amount": "49.00",
    "currency": "USD",
    "price_currency": "USD",
    "refund_window_days": 14,
    "capstone_requires_all_courses": True,
    "curriculum_version": 1,
    "method": "government_id",
    "expires_at": "2027-03-02T14:30:00+00:00",
    "reason": "document_unreadable",
    "certificate_id": "5d1f0f9e-8a8e-4a53-9a54-1f2a9d0c6b11",
    "verification_code": "q3ZkPp9xT2mH0sVbLr4w",
    "earned_at": T.isoformat(),
    "at": T.isoformat(),
    "previous_hash": "9b1c3e0f5a" + "0" * 54,
    "evidence": [
        "3f0c2b8e-2c1d-5e8a-9d3f-6a1b0c9e8f7d:12",
        "3f0c2b8e-2c1d-5e8a-9d3f-6a1b0c9e8f7d:14",
        "3f0c2b8e-2c1d-5e8a-9d3f-6a1b0c9e8f7d:3",
    ],
    "course_certificate_ids": ["5d1f0f9e-8a8e-4a53-9a54-1f2a9d0c6b11"],
    "enrollment_id": "3f0c2b8e-2c1d-5e8a-9d3f-6a1b0c9e8f7d:2",
    "missing": ["ds-4: not paid", "ds-9: not passed"],
    "detail": "the 14-day refund window closed on 2026-03-16T14:30:00+00:00",
    "request": "enroll",
    "subject": "jhu-data-science",
    "by_trust_and_safety": True,
    "first_message_type": "ledger.learner.enrolled.v1",
    "curricula": ["jhu-data-science@v1"],
}


#: Which platform service publishes each family of inbound types (for the examples).
SOURCES = {
    "specialization": "urn:platform:catalog",
    "learner": "urn:platform:enrollment",
    "course": "urn:platform:grading",
    "payment": "urn:platform:payments",
    "aid": "urn:platform:financial-aid",
    "identity": "urn:platform:identity",
    "certificate": "urn:platform:trust-and-safety",
}


def _example_data(model: type[BaseModel]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name in FIELD_EXAMPLES:
            data[name] = FIELD_EXAMPLES[name]
        elif isinstance(info.default, BaseModel):
            data[name] = info.default.model_dump(mode="json")
        elif not info.is_required() and info.default is None:
            continue
        else:
            msg = f"no example value for field {name!r} of {model.__name__}: add one"
            raise KeyError(msg)
    model.model_validate(data)
    return data


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=_default) + "\n"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value))


def inbound_example(model: type[MessageData]) -> dict[str, Any]:
    data = _example_data(model)
    return {
        "specversion": "1.0",
        "id": f"{model.TYPE.split('.')[1]}-0001",
        "source": SOURCES[model.TYPE.split(".")[1]],
        "type": model.TYPE,
        "time": T.isoformat(),
        "subject": data.get("learner_id", data.get("specialization_id")),
        "datacontenttype": "application/json",
        "data": data,
    }


def outbound_example(ce_type: str, model: type[BaseModel]) -> dict[str, Any]:
    subject = "jhu-data-science" if ".specialization." in ce_type else "learner-0042"
    return {
        "key": "3f0c2b8e-2c1d-5e8a-9d3f-6a1b0c9e8f7d",
        "headers": {
            "ce_specversion": "1.0",
            "ce_id": "3f0c2b8e-2c1d-5e8a-9d3f-6a1b0c9e8f7d:7",
            "ce_source": SOURCE,
            "ce_type": ce_type,
            "ce_subject": subject,
            "ce_time": T.isoformat(),
            "ce_recordedtime": "2026-03-02T14:30:01.250000+00:00",
            "ce_sequence": "7",
            "content-type": "application/json",
        },
        "value": _example_data(model),
    }


def render() -> dict[str, str]:
    """Every file of `schemas/`, by path relative to it."""
    files: dict[str, str] = {}
    for ce_type, inbound in sorted(MESSAGE_TYPES.items()):
        schema = inbound.model_json_schema()
        schema["$id"] = f"urn:ledger:schema:inbound:{ce_type}"
        schema["description"] = f"`data` of the inbound CloudEvent `{ce_type}`."
        files[f"inbound/{ce_type}.schema.json"] = _json(schema)
        files[f"inbound/{ce_type}.example.json"] = _json(inbound_example(inbound))
    for ce_type, outbound in sorted(OUTBOUND_MODELS.items()):
        schema = outbound.model_json_schema()
        schema["$id"] = f"urn:ledger:schema:outbound:{ce_type}"
        files[f"outbound/{ce_type}.schema.json"] = _json(schema)
        files[f"outbound/{ce_type}.example.json"] = _json(outbound_example(ce_type, outbound))
    return files


def write(root: Path) -> list[str]:
    """Write `schemas/` afresh; return the paths written."""
    for old in root.glob("*/*.json"):
        old.unlink()
    written = []
    for relative, text in render().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(relative)
    return written


def drift(root: Path) -> list[str]:
    """What differs between `root` and what the code generates (empty when in step)."""
    expected = render()
    problems = []
    for relative, text in expected.items():
        path = root / relative
        if not path.exists():
            problems.append(f"missing: {relative}")
        elif path.read_text() != text:
            problems.append(f"out of date: {relative}")
    for path in sorted(root.glob("*/*.json")):
        relative = str(path.relative_to(root))
        if relative not in expected:
            problems.append(f"not generated by the code (stale?): {relative}")
    return problems
