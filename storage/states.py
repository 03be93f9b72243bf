"""The release life cycle: one state machine per (release, platform).

::

    uploaded ──submit──▶ in_review ──▶ approved ──publish──▶ publishing ──▶ released
        │                 │     │          │  ▲                  │  │           │
        │                 │     ▼          ▼  │ stop             │  │           ├─▶ rolled_back
        │                 │  delayed      gray ──publish─────────┘  │           └─▶ offline
        │                 ▼               (percent grows: gray → gray)
        │      rejected | withdrawn ──resubmit──▶ in_review          └─(failed)─▶ approved | gray
        ▼
    superseded ◀── a newer version was uploaded (uploaded, rejected, withdrawn) or
                   submitted (approved) on the same platform: the platform no longer
                   holds this version's code for review or release.

``delayed`` is a review the platform postponed: it still ends approved, rejected or
withdrawn, never back in review. ``gray`` is a staged release: the approved version is live
for a share of users; publish completes it, stop takes it back to approved.
``rolled_back`` is a released version the platform took back (the one before it is live
again); ``offline`` one taken off the shelves.

``publishing`` is the claim a publisher takes *before* calling the platform: the move
``approved → publishing`` is a compare-and-set in the database, so of two processes
that try to publish the same release only one gets to call the platform.
``approved → released``, ``approved → withdrawn`` and ``gray → released`` are for changes
made outside miniship (in a platform's console), which the watcher records;
``approved → withdrawn`` and ``rejected → withdrawn`` are also a person sending a decided
version back to development where the platform allows it (Alipay's ``audited.cancel``).
"""

from __future__ import annotations

from collections import deque
from enum import StrEnum

__all__ = [
    "ACTIVE",
    "ROLLOUT_TRANSITIONS",
    "TIMED_TRANSITIONS",
    "TRANSITIONS",
    "FleetState",
    "InvalidTransition",
    "ItemState",
    "ReleaseState",
    "RolloutState",
    "TimedState",
    "check_rollout",
    "check_timed",
    "check_transition",
    "route",
]


class ReleaseState(StrEnum):
    UPLOADED = "uploaded"
    IN_REVIEW = "in_review"
    DELAYED = "delayed"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    PUBLISHING = "publishing"
    GRAY = "gray"
    RELEASED = "released"
    ROLLED_BACK = "rolled_back"
    OFFLINE = "offline"
    SUPERSEDED = "superseded"


S = ReleaseState

TRANSITIONS: dict[ReleaseState, frozenset[ReleaseState]] = {
    S.UPLOADED: frozenset({S.IN_REVIEW, S.SUPERSEDED}),
    S.IN_REVIEW: frozenset({S.APPROVED, S.REJECTED, S.WITHDRAWN, S.DELAYED}),
    S.DELAYED: frozenset({S.APPROVED, S.REJECTED, S.WITHDRAWN}),
    S.APPROVED: frozenset({S.PUBLISHING, S.GRAY, S.RELEASED, S.WITHDRAWN, S.SUPERSEDED}),
    S.GRAY: frozenset({S.GRAY, S.PUBLISHING, S.APPROVED, S.RELEASED}),
    S.PUBLISHING: frozenset({S.RELEASED, S.APPROVED, S.GRAY}),
    S.REJECTED: frozenset({S.IN_REVIEW, S.WITHDRAWN, S.SUPERSEDED}),
    S.WITHDRAWN: frozenset({S.IN_REVIEW, S.SUPERSEDED}),
    S.RELEASED: frozenset({S.ROLLED_BACK, S.OFFLINE}),
    S.ROLLED_BACK: frozenset(),
    S.OFFLINE: frozenset(),
    S.SUPERSEDED: frozenset(),
}

ACTIVE = frozenset({S.IN_REVIEW, S.DELAYED, S.APPROVED, S.GRAY, S.PUBLISHING})
"""States the watcher keeps asking the platform about: a review may be decided, or a
person may act in the platform's own console (withdraw, publish)."""


class TimedState(StrEnum):
    """A timed action (a publish at a given minute): its own small life cycle.

    ``pending`` → ``running`` is the claim a scheduler takes at fire time (compare-and-set,
    so of two scheduler processes only one goes on); ``missed`` is a fire time found too
    late (past the grace period) to act on; ``held`` one that fell due while its app was
    frozen or locked (announced; nothing published).
    """

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    MISSED = "missed"
    CANCELLED = "cancelled"
    HELD = "held"


class FleetState(StrEnum):
    """A fleet run (one command over many apps): running until every app is done, or
    cancelled (what ran stays done; ``retry`` runs it again)."""

    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


class ItemState(StrEnum):
    """One app of a fleet run. ``pending`` → ``running`` is the claim a worker takes
    (compare-and-set: of two processes driving one run, one runs the app); ``waiting``:
    it became a request for a second person's approval; ``skipped``: there was nothing to
    do (already uploaded, already live…)."""

    PENDING = "pending"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"
    CANCELLED = "cancelled"


TIMED_TRANSITIONS: dict[TimedState, frozenset[TimedState]] = {
    TimedState.PENDING: frozenset({TimedState.RUNNING, TimedState.MISSED, TimedState.CANCELLED}),
    TimedState.RUNNING: frozenset({TimedState.DONE, TimedState.FAILED, TimedState.HELD}),
    TimedState.DONE: frozenset(),
    TimedState.FAILED: frozenset(),
    TimedState.MISSED: frozenset(),
    TimedState.CANCELLED: frozenset(),
    TimedState.HELD: frozenset(),
}


class RolloutState(StrEnum):
    """A staged rollout (``rollout <app> <version>``): steps of a gray release, each after
    a health gate. ``running`` waits for its next step; ``paused`` by a person;
    ``halted`` by a regression (the staged release taken back, or per plan left live);
    ``completed`` released to everyone; ``aborted`` stopped for good; ``stepping``: a call to
    the platform (a step, a revert, an abort) is under way, claimed by compare-and-set
    before it, so whoever moved the row first wins and the other does nothing. A step
    within a state (the share grows, a hold is noted) is a move to the same state."""

    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"
    STEPPING = "stepping"
    COMPLETED = "completed"
    ABORTED = "aborted"


_R = RolloutState
ROLLOUT_TRANSITIONS: dict[RolloutState, frozenset[RolloutState]] = {
    _R.RUNNING: frozenset(
        {_R.RUNNING, _R.PAUSED, _R.HALTED, _R.STEPPING, _R.COMPLETED, _R.ABORTED}
    ),
    _R.PAUSED: frozenset({_R.PAUSED, _R.RUNNING, _R.STEPPING, _R.COMPLETED, _R.ABORTED}),
    _R.HALTED: frozenset({_R.HALTED, _R.RUNNING, _R.STEPPING, _R.COMPLETED, _R.ABORTED}),
    _R.STEPPING: frozenset({_R.RUNNING, _R.PAUSED, _R.HALTED, _R.COMPLETED, _R.ABORTED}),
    _R.COMPLETED: frozenset(),
    _R.ABORTED: frozenset(),
}

# the order used when naming what may come next
_ORDER: list[str] = [*ReleaseState, *TimedState, *RolloutState]


class InvalidTransition(Exception):
    """The state machine does not allow this step."""

    def __init__(
        self,
        current: ReleaseState | TimedState | RolloutState,
        wanted: ReleaseState | TimedState | RolloutState,
    ) -> None:
        self.current = current
        self.wanted = wanted
        allowed: frozenset[str]
        if isinstance(current, TimedState):
            allowed = TIMED_TRANSITIONS[current]
        elif isinstance(current, RolloutState):
            allowed = ROLLOUT_TRANSITIONS[current]
        else:
            allowed = TRANSITIONS[current]
        self.allowed = sorted(allowed, key=_ORDER.index)
        nxt = ", ".join(self.allowed) if self.allowed else "nothing (this is final)"
        super().__init__(f"cannot go from {current} to {wanted}; from {current} comes {nxt}")


def check_transition(current: ReleaseState, wanted: ReleaseState) -> None:
    if wanted not in TRANSITIONS[current]:
        raise InvalidTransition(current, wanted)


def route(start: ReleaseState, goal: ReleaseState) -> list[ReleaseState] | None:
    """The shortest way from ``start`` to ``goal`` (the states moved through, ``goal``
    last), never through the publish claim unless it is the goal; None if there is none."""
    seen = {start}
    queue: deque[tuple[ReleaseState, list[ReleaseState]]] = deque([(start, [])])
    while queue:
        state, steps = queue.popleft()
        for nxt in sorted(TRANSITIONS[state], key=_ORDER.index):
            if nxt in seen or (nxt is ReleaseState.PUBLISHING and nxt is not goal):
                continue
            if nxt is goal:
                return [*steps, nxt]
            seen.add(nxt)
            queue.append((nxt, [*steps, nxt]))
    return None


def check_timed(current: TimedState, wanted: TimedState) -> None:
    if wanted not in TIMED_TRANSITIONS[current]:
        raise InvalidTransition(current, wanted)


def check_rollout(current: RolloutState, wanted: RolloutState) -> None:
    if wanted not in ROLLOUT_TRANSITIONS[current]:
        raise InvalidTransition(current, wanted)
