"""The chaos matrix's comparison can fail: each way a run can go wrong is counted as such."""

from __future__ import annotations

from collections import Counter

from ledger.entrypoints.chaos.state import (
    EndState,
    _learn_random,
    _pattern,
    _replace,
    _substitute,
    compare,
)


def state(streams: dict[str, list[str]], **rest: object) -> EndState:
    found = EndState(streams={k: list(v) for k, v in streams.items()})
    for name, value in rest.items():
        setattr(found, name, value)
    return found


BASE = {"ada": ["registered", "enrolled", "graded"], "bob": ["registered"]}


def test_the_same_end_state_differs_in_nothing() -> None:
    difference = compare(state(BASE), state(BASE))
    assert (difference.lost, difference.duplicated, difference.reordered, difference.diverged) == (
        0,
        0,
        0,
        0,
    )


def test_a_missing_event_is_lost() -> None:
    run = state({**BASE, "ada": ["registered", "enrolled"]})
    assert compare(state(BASE), run).lost == 1


def test_an_event_twice_is_duplicated() -> None:
    run = state({**BASE, "ada": ["registered", "enrolled", "graded", "graded"]})
    assert compare(state(BASE), run).duplicated == 1


def test_the_same_events_in_another_order_are_reordered() -> None:
    run = state({**BASE, "ada": ["registered", "graded", "enrolled"]})
    difference = compare(state(BASE), run)
    assert difference.reordered == 1
    assert difference.lost == difference.duplicated == 0


def test_a_message_accepted_twice_or_a_rejection_lost_is_counted() -> None:
    base = state(BASE, accepted=10, rejections=Counter({"not_json": 2}))
    run = state(BASE, accepted=11, rejections=Counter({"not_json": 1}))
    difference = compare(base, run)
    assert difference.duplicated == 1
    assert difference.lost == 1


def test_what_audit_verify_finds_is_counted_by_kind() -> None:
    run = state(BASE, verify=Counter({"missing": 2, "twice": 1, "order": 1, "altered": 1}))
    difference = compare(state(BASE), run)
    assert (difference.lost, difference.duplicated, difference.reordered, difference.diverged) == (
        2,
        1,
        1,
        1,
    )


def test_a_read_model_row_or_the_retention_figures_differing_is_divergence() -> None:
    base = state(BASE, tables={"m.t": ["(1,a)", "(2,b)"]}, retention=["x"])
    run = state(BASE, tables={"m.t": ["(1,a)", "(2,c)"]}, retention=["y"])
    assert compare(base, run).diverged == 3


def test_random_ids_are_named_by_their_place_in_the_learners_history() -> None:
    def normalised(codes: tuple[str, str]) -> tuple[object, str]:
        translation: dict[str, str] = {}
        counts: Counter[str] = Counter()
        data = {"certificate_id": codes[0], "verification_code": codes[1], "evidence": ["x:1"]}
        _learn_random(data, "ada", translation, counts)
        row = f"({codes[0]},{codes[1]},ada)"
        return _replace(data, translation), _substitute(_pattern(translation), translation, row)

    assert normalised(("c-1", "code-1")) == normalised(("c-2", "code-2"))
    assert normalised(("c-1", "code-1"))[0] != {"certificate_id": "c-1"}
