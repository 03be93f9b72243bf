"""The release life cycle as it is documented, held against the state machine.

The expected steps below are written out by hand from the documentation — the diagram
and prose in the docstring of storage/states.py and "How releases move" in the README —
never read from ``TRANSITIONS``. Every documented step must be allowed and every other
pair of states refused, so adding or removing a step in storage/states.py without
updating the documentation and this file fails here.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from storage.states import (
    ACTIVE,
    InvalidTransition,
    ReleaseState,
    TimedState,
    check_timed,
    check_transition,
)

# -- the release life cycle, as documented ------------------------------------------------

STATES = [
    "uploaded",
    "in_review",
    "delayed",
    "approved",
    "rejected",
    "withdrawn",
    "publishing",
    "gray",
    "released",
    "rolled_back",
    "offline",
    "superseded",
]

DOCUMENTED: list[tuple[str, str]] = [
    ("uploaded", "in_review"),  # submit
    ("uploaded", "superseded"),  # a newer version was uploaded
    ("in_review", "approved"),
    ("in_review", "rejected"),
    ("in_review", "withdrawn"),
    ("in_review", "delayed"),
    ("delayed", "approved"),  # README: delayed → approved | rejected | withdrawn
    ("delayed", "rejected"),
    ("delayed", "withdrawn"),
    ("approved", "publishing"),  # publish: the claim, a compare-and-set
    ("approved", "gray"),  # a staged release
    ("approved", "released"),  # published in the platform's console
    ("approved", "withdrawn"),  # withdrawn here (Alipay) or in the platform's console
    ("approved", "superseded"),  # a newer version was submitted
    ("gray", "gray"),  # the percentage grows
    ("gray", "publishing"),  # publish completes it
    ("gray", "released"),  # completed in the platform's console
    ("gray", "approved"),  # stop
    ("publishing", "released"),
    ("publishing", "approved"),  # the publish failed
    ("publishing", "gray"),  # the publish failed
    ("rejected", "in_review"),  # resubmit
    ("rejected", "withdrawn"),  # back to development (Alipay audited.cancel)
    ("rejected", "superseded"),
    ("withdrawn", "in_review"),  # resubmit
    ("withdrawn", "superseded"),
    ("released", "rolled_back"),
    ("released", "offline"),
]

FINAL = ["rolled_back", "offline", "superseded"]

# Where the documentation and storage/states.py disagree. Each is a strict xfail: resolve
# it (in the table or in the documentation, and here) and the xfail turns into a failure.
DOCUMENTED_BUT_REFUSED: dict[tuple[str, str], str] = {}
ALLOWED_BUT_UNDOCUMENTED: dict[tuple[str, str], str] = {}

ACTIVE_DOCUMENTED = {"in_review", "delayed", "approved", "gray", "publishing"}


def _next(state: str, documented: list[tuple[str, str]]) -> set[str]:
    return {b for a, b in documented if a == state}


def _steps(steps: list[tuple[str, str]], xfail: dict[tuple[str, str], str]) -> list[Any]:
    return [
        pytest.param(
            a,
            b,
            id=f"{a}->{b}",
            marks=[pytest.mark.xfail(strict=True, reason=xfail[a, b])] if (a, b) in xfail else [],
        )
        for a, b in steps
    ]


def _allows(current: str, wanted: str) -> bool:
    try:
        check_transition(ReleaseState(current), ReleaseState(wanted))
    except InvalidTransition:
        return False
    return True


def _refusal(current: str, wanted: str) -> InvalidTransition:
    with pytest.raises(InvalidTransition) as err:
        check_transition(ReleaseState(current), ReleaseState(wanted))
    return err.value


def test_the_documented_list_is_consistent() -> None:
    assert len(set(DOCUMENTED)) == len(DOCUMENTED)
    assert {s for step in DOCUMENTED for s in step} <= set(STATES)
    assert not set(DOCUMENTED_BUT_REFUSED) & set(DOCUMENTED)
    assert not set(ALLOWED_BUT_UNDOCUMENTED) & set(DOCUMENTED)
    assert all(not _next(final, DOCUMENTED) for final in FINAL)


def test_the_documented_states_are_the_states() -> None:
    # in the order a refusal names them
    assert [str(s) for s in ReleaseState] == STATES


@pytest.mark.parametrize(
    ("current", "wanted"),
    _steps([*DOCUMENTED, *DOCUMENTED_BUT_REFUSED], DOCUMENTED_BUT_REFUSED),
)
def test_documented_step_is_allowed(current: str, wanted: str) -> None:
    check_transition(ReleaseState(current), ReleaseState(wanted))


UNDOCUMENTED = [
    (a, b)
    for a, b in itertools.product(STATES, STATES)
    if (a, b) not in DOCUMENTED and (a, b) not in DOCUMENTED_BUT_REFUSED
]


@pytest.mark.parametrize(("current", "wanted"), _steps(UNDOCUMENTED, ALLOWED_BUT_UNDOCUMENTED))
def test_undocumented_step_is_refused(current: str, wanted: str) -> None:
    err = _refusal(current, wanted)
    assert (err.current, err.wanted) == (current, wanted)
    nxt = ", ".join(err.allowed) if err.allowed else "nothing (this is final)"
    assert str(err) == f"cannot go from {current} to {wanted}; from {current} comes {nxt}"


DISAGREEMENTS = DOCUMENTED_BUT_REFUSED | ALLOWED_BUT_UNDOCUMENTED


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(
            s,
            id=s,
            marks=[
                pytest.mark.xfail(strict=True, reason=reason)
                for (a, b), reason in DISAGREEMENTS.items()
                if a == s
            ],
        )
        for s in STATES
    ],
)
def test_refusal_names_what_may_come_next(state: str) -> None:
    err = _refusal(state, "uploaded")  # nothing comes back to uploaded
    documented = [*DOCUMENTED, *DOCUMENTED_BUT_REFUSED]
    expected = sorted(_next(state, documented), key=STATES.index)
    assert err.allowed == expected
    for nxt in expected:
        assert nxt in str(err)


@pytest.mark.parametrize(
    ("current", "wanted", "message"),
    [
        pytest.param(
            "released",
            "approved",
            "cannot go from released to approved; from released comes rolled_back, offline",
            id="released->approved",
        ),
        pytest.param(
            "uploaded",
            "approved",
            "cannot go from uploaded to approved; from uploaded comes in_review, superseded",
            id="uploaded->approved",
        ),
        pytest.param(
            "rejected",
            "publishing",
            "cannot go from rejected to publishing; "
            "from rejected comes in_review, withdrawn, superseded",
            id="rejected->publishing",
        ),
    ],
)
def test_refusal_message(current: str, wanted: str, message: str) -> None:
    assert str(_refusal(current, wanted)) == message


@pytest.mark.parametrize("final", FINAL)
def test_final_states_have_no_way_out(final: str) -> None:
    for wanted in STATES:
        err = _refusal(final, wanted)
        assert err.allowed == []
        assert str(err).endswith(f"from {final} comes nothing (this is final)")


def test_a_released_version_can_only_be_taken_back() -> None:
    assert [b for b in STATES if _allows("released", b)] == ["rolled_back", "offline"]


def test_publishing_is_only_reached_from_approved_or_gray() -> None:
    assert [a for a in STATES if _allows(a, "publishing")] == ["approved", "gray"]


def test_a_staged_release_starts_only_from_approved() -> None:
    assert not _allows("in_review", "gray")
    assert [a for a in STATES if a != "gray" and _allows(a, "gray")] == [
        "approved",
        "publishing",  # back to gray when the publish failed
    ]


def test_the_watcher_asks_about_the_documented_states() -> None:
    assert {str(s) for s in ACTIVE} == ACTIVE_DOCUMENTED
    assert not ACTIVE & set(FINAL)


# -- documented paths, end to end ---------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ["uploaded", "in_review", "approved", "publishing", "released", "rolled_back"],
        ["uploaded", "in_review", "delayed", "approved", "publishing", "released", "offline"],
        ["approved", "gray", "gray", "publishing", "released"],
        ["approved", "gray", "approved", "publishing", "approved", "publishing", "released"],
        ["gray", "publishing", "gray"],
        ["uploaded", "in_review", "rejected", "in_review", "withdrawn", "in_review", "approved"],
        ["rejected", "in_review"],
        ["in_review", "approved", "superseded"],
    ],
    ids="->".join,
)
def test_a_documented_path_walks_through(path: list[str]) -> None:
    for a, b in itertools.pairwise(path):
        check_transition(ReleaseState(a), ReleaseState(b))


def test_a_staged_release_grows_completes_or_stops() -> None:
    for a, b in [
        ("approved", "gray"),
        ("gray", "gray"),
        ("gray", "publishing"),
        ("publishing", "gray"),
        ("gray", "approved"),
    ]:
        check_transition(ReleaseState(a), ReleaseState(b))


# -- the timed action's life cycle, as documented -----------------------------------------

TIMED_STATES = ["pending", "running", "done", "failed", "missed", "cancelled", "held"]

TIMED_DOCUMENTED: list[tuple[str, str]] = [
    ("pending", "running"),  # the scheduler's claim at fire time
    ("pending", "missed"),  # found past the grace period
    ("pending", "cancelled"),  # schedule cancel
    ("running", "done"),
    ("running", "failed"),
    ("running", "held"),  # its app was frozen or locked at its minute
]

TIMED_FINAL = ["done", "failed", "missed", "cancelled", "held"]


def _timed_refusal(current: str, wanted: str) -> InvalidTransition:
    with pytest.raises(InvalidTransition) as err:
        check_timed(TimedState(current), TimedState(wanted))
    return err.value


def test_the_documented_timed_states_are_the_states() -> None:
    assert [str(s) for s in TimedState] == TIMED_STATES
    assert all(not _next(final, TIMED_DOCUMENTED) for final in TIMED_FINAL)


@pytest.mark.parametrize(("current", "wanted"), _steps(TIMED_DOCUMENTED, {}))
def test_documented_timed_step_is_allowed(current: str, wanted: str) -> None:
    check_timed(TimedState(current), TimedState(wanted))


@pytest.mark.parametrize(
    ("current", "wanted"),
    _steps(
        [
            (a, b)
            for a, b in itertools.product(TIMED_STATES, TIMED_STATES)
            if (a, b) not in TIMED_DOCUMENTED
        ],
        {},
    ),
)
def test_undocumented_timed_step_is_refused(current: str, wanted: str) -> None:
    err = _timed_refusal(current, wanted)
    expected = sorted(_next(current, TIMED_DOCUMENTED), key=TIMED_STATES.index)
    assert err.allowed == expected
    nxt = ", ".join(expected) if expected else "nothing (this is final)"
    assert str(err) == f"cannot go from {current} to {wanted}; from {current} comes {nxt}"


def test_timed_refusal_message() -> None:
    assert str(_timed_refusal("pending", "done")) == (
        "cannot go from pending to done; from pending comes running, missed, cancelled"
    )
    assert str(_timed_refusal("missed", "running")) == (
        "cannot go from missed to running; from missed comes nothing (this is final)"
    )


@pytest.mark.parametrize(
    "path",
    [["pending", "running", "done"], ["pending", "running", "failed"]],
    ids="->".join,
)
def test_a_documented_timed_path_walks_through(path: list[str]) -> None:
    for a, b in itertools.pairwise(path):
        check_timed(TimedState(a), TimedState(b))
