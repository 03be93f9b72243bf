"""The release state machine: every step it allows, and every step it refuses."""

from __future__ import annotations

import itertools

import pytest

from storage.states import TRANSITIONS, InvalidTransition, ReleaseState, check_transition

S = ReleaseState
ALL_PAIRS = list(itertools.product(S, S))
ALLOWED = [(a, b) for a, b in ALL_PAIRS if b in TRANSITIONS[a]]
REFUSED = [(a, b) for a, b in ALL_PAIRS if b not in TRANSITIONS[a]]


def test_the_documented_life_cycle_is_allowed() -> None:
    path = [S.UPLOADED, S.IN_REVIEW, S.DELAYED, S.APPROVED, S.PUBLISHING, S.RELEASED]
    for a, b in itertools.pairwise(path):
        check_transition(a, b)
    for end in (S.APPROVED, S.REJECTED, S.WITHDRAWN, S.DELAYED):
        check_transition(S.IN_REVIEW, end)


@pytest.mark.parametrize(("current", "wanted"), ALLOWED, ids=lambda s: str(s))
def test_allowed(current: ReleaseState, wanted: ReleaseState) -> None:
    check_transition(current, wanted)


@pytest.mark.parametrize(("current", "wanted"), REFUSED, ids=lambda s: str(s))
def test_refused_names_what_may_come_next(current: ReleaseState, wanted: ReleaseState) -> None:
    with pytest.raises(InvalidTransition) as err:
        check_transition(current, wanted)
    assert err.value.allowed == sorted(TRANSITIONS[current], key=list(S).index)
    message = str(err.value)
    assert f"from {current} to {wanted}" in message
    for nxt in TRANSITIONS[current]:
        assert str(nxt) in message
    if not TRANSITIONS[current]:
        assert "final" in message


def test_final_states_have_no_way_out() -> None:
    for final in (S.ROLLED_BACK, S.OFFLINE, S.SUPERSEDED):
        assert TRANSITIONS[final] == frozenset()


def test_a_released_version_can_only_be_taken_back() -> None:
    assert TRANSITIONS[S.RELEASED] == {S.ROLLED_BACK, S.OFFLINE}


def test_publishing_is_only_reached_from_approved_or_gray() -> None:
    assert [a for a in S if S.PUBLISHING in TRANSITIONS[a]] == [S.APPROVED, S.GRAY]


def test_staged_release_grows_completes_or_stops() -> None:
    for a, b in [
        (S.APPROVED, S.GRAY),
        (S.GRAY, S.GRAY),
        (S.GRAY, S.PUBLISHING),
        (S.PUBLISHING, S.GRAY),
        (S.GRAY, S.APPROVED),
    ]:
        check_transition(a, b)
    with pytest.raises(InvalidTransition):
        check_transition(S.IN_REVIEW, S.GRAY)
