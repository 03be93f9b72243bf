"""The release policy: from a release's state on one platform, what may happen, what is
offered, and what it is called.

This is the one place that reads release states. Use cases ask it before they call a
platform (``refusal``), cards and replies ask it what to offer (``offered``), the watcher
asks it what a platform's review reading means (``reading``), and the timed-release checks
ask it whether a plan may still go out. The state machine itself — which moves the
database accepts — is :mod:`storage.states`; this module says which of them a *person's
action* may take, and in what words.

Actions are the command verbs that act on a release: ``submit``, ``expedite``,
``withdraw``, ``publish``, ``gray``, ``gray stop``, ``rollback``, ``offline``, and
``schedule`` (plan a timed publish) and ``timed publish`` (the plan at its minute).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from handlers import versions
from platforms.base import ReviewState
from storage.states import ACTIVE, TRANSITIONS, ReleaseState, RolloutState, route

__all__ = [
    "AFTER",
    "CLAIM",
    "CLAIM_TIMEOUT",
    "LIVE",
    "PENDING_REVIEW",
    "ROLLOUT_LOOK_AT",
    "ROLLOUT_STANDINGS",
    "SUPERSEDES",
    "Reading",
    "allows",
    "attention",
    "candidates",
    "claimed",
    "decided",
    "has_evidence",
    "is_live",
    "live_moved",
    "offered",
    "pending_review",
    "reading",
    "refusal",
    "resubmits",
    "rollout_allows",
    "rollout_busy",
    "rollout_controls",
    "rollout_needs_override",
    "rollout_refusal",
    "rollout_standing",
    "rollout_words",
    "rules",
    "shows_reason",
    "stamp",
    "watched",
    "words",
]

S = ReleaseState

PENDING_REVIEW = frozenset({S.IN_REVIEW, S.DELAYED})
"""A review the platform has not decided yet."""
CLAIM = S.PUBLISHING
"""The claim a publisher takes before calling the platform (compare-and-set)."""
CLAIM_TIMEOUT = timedelta(minutes=5)
"""A publish claim older than this was abandoned (its process died or was stopped
mid-call); the watcher then settles the release from what the platform says."""

_SUBMITTABLE = frozenset(s for s in S if S.IN_REVIEW in TRANSITIONS[s])
_PUBLISHABLE = frozenset({S.APPROVED, S.GRAY})
_DECIDED = frozenset({S.APPROVED, S.REJECTED})

_ALLOWED: dict[str, frozenset[ReleaseState]] = {
    "submit": _SUBMITTABLE,
    "expedite": PENDING_REVIEW,
    # decided (approved or rejected): back to development, only where the platform offers
    # it (withdraws_decided); elsewhere a rejected version is resubmitted or replaced
    "withdraw": PENDING_REVIEW | _DECIDED,
    "publish": _PUBLISHABLE,
    "gray": _PUBLISHABLE,
    "gray stop": frozenset({S.GRAY}),
    "rollback": frozenset({S.RELEASED}),
    "offline": frozenset({S.RELEASED}),
    # planned while approved, or still in review (it goes out only if approved by then)
    "schedule": PENDING_REVIEW | {S.APPROVED},
    "timed publish": frozenset({S.APPROVED}),
}

_OTHERWISE: dict[str, str] = {
    "submit": "; only an uploaded, rejected or withdrawn version can be submitted",
    "expedite": ", not in review; only a review can be expedited",
    "withdraw": ", not in review; nothing to withdraw",
    "publish": "; only an approved version can be published",
    "gray": "; only an approved version can be released to a share of users",
    "gray stop": ", not staged",
    "rollback": ", not live",
    "offline": ", not live",
    "schedule": "; only an approved version (or one in review) can be published later",
    "timed publish": ", not approved",
}

AFTER: dict[str, ReleaseState] = {
    "submit": S.IN_REVIEW,
    "withdraw": S.WITHDRAWN,
    "publish": S.RELEASED,
    "gray": S.GRAY,
    "gray stop": S.APPROVED,
    "rollback": S.ROLLED_BACK,
    "offline": S.OFFLINE,
}
"""Where a successful action leaves the release."""

SUPERSEDES: dict[str, tuple[ReleaseState, ...]] = {
    # a platform that holds one trial version drops older uploads not yet decided on
    "upload": (S.UPLOADED, S.REJECTED, S.WITHDRAWN),
    # a new review replaces older unpublished decisions on the platform
    "submit": (S.APPROVED, S.REJECTED),
}
"""Older versions (in these states, on the same platform) an action replaces."""

_WORDS: dict[ReleaseState, str] = {
    S.UPLOADED: "uploaded",
    S.IN_REVIEW: "in review",
    S.DELAYED: "review delayed",
    S.APPROVED: "approved",
    S.REJECTED: "rejected",
    S.WITHDRAWN: "withdrawn",
    S.PUBLISHING: "publishing",
    S.GRAY: "staged (gray)",
    S.RELEASED: "released",
    S.ROLLED_BACK: "rolled back",
    S.OFFLINE: "offline",
    S.SUPERSEDED: "superseded",
}

_STAMPS: dict[ReleaseState, tuple[str, str]] = {
    S.UPLOADED: ("uploaded", "uploaded_at"),
    S.IN_REVIEW: ("submitted", "submitted_at"),
    S.DELAYED: ("submitted", "submitted_at"),
    S.APPROVED: ("decided", "decided_at"),
    S.REJECTED: ("decided", "decided_at"),
    S.RELEASED: ("released", "released_at"),
}

# what the platform's word means for the stored state
_FROM_REVIEW: dict[ReviewState, ReleaseState] = {
    ReviewState.IN_REVIEW: S.IN_REVIEW,
    ReviewState.DELAYED: S.DELAYED,
    ReviewState.APPROVED: S.APPROVED,
    ReviewState.GRAY: S.GRAY,
    ReviewState.REJECTED: S.REJECTED,
    ReviewState.WITHDRAWN: S.WITHDRAWN,
    ReviewState.RELEASED: S.RELEASED,
}
# changes only a person makes: if miniship did not make them, they were made elsewhere
_BY_PEOPLE = frozenset({S.WITHDRAWN, S.RELEASED, S.GRAY})


def _state(state: ReleaseState | str) -> ReleaseState:
    return ReleaseState(state)


def attention(
    state: ReleaseState | str, since: datetime | None, now: datetime, waited: timedelta
) -> str:
    """Why a release in ``state`` (since ``since``) needs a person now, or "": a
    rejection, a delayed review, a review waiting longer than ``waited``, a publish claim
    left behind."""
    current = _state(state)
    if current in (S.REJECTED, S.DELAYED):
        return words(current)
    if since is None:
        return ""
    if current is S.IN_REVIEW and now - since > waited:
        return f"in review for {_span(now - since)}"
    if current is CLAIM and now - since > CLAIM_TIMEOUT:
        return f"publishing for {_span(now - since)} (the watcher settles it)"
    return ""


def _span(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    return f"{hours // 24} d {hours % 24} h" if hours >= 24 else f"{hours} h"


def rules(action: str) -> bool:
    """Whether the policy has a rule for ``action`` (every card button needs one)."""
    return action in _ALLOWED


def allows(action: str, state: ReleaseState | str, *, withdraws_decided: bool = False) -> bool:
    """Whether ``action`` may start from ``state``.

    ``withdraws_decided``: the platform can take an approved or rejected version back to
    development (Alipay can; WeChat withdraws only a review in progress).
    """
    current = _state(state)
    if action == "withdraw" and current in _DECIDED and not withdraws_decided:
        return False
    return current in _ALLOWED[action]


def refusal(
    action: str,
    version: str,
    state: ReleaseState | str,
    *,
    where: str = "",
    withdraws_decided: bool = False,
) -> str:
    """Why ``action`` may not start from ``state`` ("" when it may); ``where`` names the
    platform in the sentence."""
    if allows(action, state, withdraws_decided=withdraws_decided):
        return ""
    on = f" on {where}" if where else ""
    return f"{version} is {words(state)}{on}{_OTHERWISE[action]}"


def offered(
    state: ReleaseState | str,
    actions: Sequence[str],
    *,
    withdraws_decided: bool = False,
    expedites: bool = False,
) -> list[str]:
    """Of ``actions`` (those a card has buttons for), the ones offered for a release in
    ``state``: exactly those the use cases accept from it (``expedites``: the platform
    takes an expedite after submission)."""
    return [
        a
        for a in actions
        if allows(a, state, withdraws_decided=withdraws_decided) and (a != "expedite" or expedites)
    ]


def candidates(action: str) -> frozenset[ReleaseState]:
    """The states ``action`` may start from (to find the version it means when none is
    named, e.g. ``gray demo wechat 10``)."""
    return _ALLOWED[action]


def pending_review(state: ReleaseState | str) -> bool:
    return _state(state) in PENDING_REVIEW


def is_live(state: ReleaseState | str) -> bool:
    """Live for every user (a staged release is live for a share only)."""
    return _state(state) is S.RELEASED


def watched(state: ReleaseState | str) -> bool:
    """Whether the platform may still change this release on its own."""
    return _state(state) in ACTIVE


def shows_reason(state: ReleaseState | str) -> bool:
    """Whether the platform's reason (rejection, delay) belongs next to the state."""
    return _state(state) in (S.REJECTED, S.DELAYED)


def words(state: ReleaseState | str) -> str:
    """The state as people read it."""
    try:
        return _WORDS[ReleaseState(state)]
    except ValueError:  # a value this version does not know: show it as stored
        return str(state).replace("_", " ")


def stamp(state: ReleaseState | str) -> tuple[str, str]:
    """(word, the release target's timestamp field) for the moment that matters in
    ``state``: ``("submitted", "submitted_at")`` while in review…"""
    try:
        return _STAMPS.get(ReleaseState(state), ("updated", "updated_at"))
    except ValueError:
        return "updated", "updated_at"


class Reading:
    """What a platform's review reading means for a stored release."""

    def __init__(
        self,
        current: ReleaseState,
        review: ReviewState,
        claimed_at: datetime | None,
        now: datetime,
        abandoned: bool = False,
    ) -> None:
        wanted = _FROM_REVIEW.get(review)
        if review is ReviewState.NOT_SUBMITTED and current in PENDING_REVIEW:
            wanted = S.WITHDRAWN  # the review is gone without a decision
        self.current = current
        self.wanted = wanted
        self._claim_abandoned = abandoned or (
            claimed_at is not None and now - claimed_at >= CLAIM_TIMEOUT
        )

    @property
    def moves(self) -> bool:
        """Whether the stored state should move (a claim is settled only by its publisher,
        unless the platform shows it live, or the claim was abandoned)."""
        if self.wanted is None or self.wanted == self.current:
            return False
        if self.current is CLAIM:
            return self.wanted is S.RELEASED or (
                self.wanted in _PUBLISHABLE and self._claim_abandoned
            )
        return True

    @property
    def outside(self) -> bool:
        """Done in the platform's own console, not through miniship."""
        return self.wanted in _BY_PEOPLE and self.current is not CLAIM

    @property
    def steps(self) -> list[ReleaseState] | None:
        """The moves that bring the stored state where the platform says it is (None: the
        state machine has no way there)."""
        return None if self.wanted is None else route(self.current, self.wanted)

    @property
    def interrupted_publish(self) -> bool:
        return self.current is CLAIM and self.wanted is S.APPROVED


def reading(
    current: ReleaseState | str,
    review: ReviewState,
    *,
    claimed_at: datetime | None = None,
    now: datetime,
    abandoned: bool = False,
) -> Reading:
    """What ``review`` (the platform's word) means for a release stored as ``current``;
    ``claimed_at`` is when a publish claim was taken (``updated_at`` of a claimed row), and
    ``abandoned`` says its holder is known to have stopped, however recent the claim."""
    return Reading(_state(current), review, claimed_at, now, abandoned)


LIVE = frozenset({S.RELEASED})
"""Released to everyone: what the platform's live version is checked against."""


def live_moved(stored: str, live: str | None, prefix: str = "") -> ReleaseState | None:
    """Where a release recorded as live (``stored``) went, when the platform now has
    ``live`` live instead (changed in the platform's own console): offline when nothing is
    live, rolled back when an older version is; None when there is nothing to record."""
    if live == stored:
        return None
    if live is None:
        return AFTER["offline"]
    mine, now = versions.readable(stored, prefix), versions.readable(live, prefix)
    if mine is not None and now is not None and now < mine:
        return AFTER["rollback"]
    return None  # a newer version went live elsewhere: the older one stays as it was


def has_evidence(state: ReleaseState | str) -> bool:
    """A rejection: the platform may have screenshots of what it is about."""
    return _state(state) is S.REJECTED


def resubmits(state: ReleaseState | str) -> bool:
    """Submitting from here is submitting again (after a rejection or a withdrawal)."""
    return _state(state) in (S.REJECTED, S.WITHDRAWN)


def claimed(state: ReleaseState | str) -> bool:
    """A publisher holds the release (its outcome may still be unknown)."""
    return _state(state) is CLAIM


def decided(state: ReleaseState | str) -> bool:
    """A review decision: the platform's decision time belongs with it."""
    return _state(state) in (S.APPROVED, S.REJECTED)


# -- staged rollouts ----------------------------------------------------------------------
# A rollout's own states (storage.states.RolloutState) and what a person may do from each.

_R = RolloutState
_ROLLOUT: dict[str, frozenset[RolloutState]] = {
    "step": frozenset({_R.RUNNING}),  # the scheduler's next step
    "pause": frozenset({_R.RUNNING}),
    "resume": frozenset({_R.PAUSED, _R.HALTED}),
    "advance": frozenset({_R.RUNNING, _R.PAUSED, _R.HALTED}),
    "abort": frozenset({_R.RUNNING, _R.PAUSED, _R.HALTED}),
}
_ROLLOUT_WORDS = {
    _R.RUNNING: "running",
    _R.PAUSED: "paused",
    _R.HALTED: "halted (waiting for a person)",
    _R.STEPPING: "taking a step (the platform is being called)",
    _R.COMPLETED: "completed (released to everyone)",
    _R.ABORTED: "aborted",
}


def rollout_allows(control: str, state: RolloutState | str) -> bool:
    """Whether ``control`` (pause, resume, advance, abort; ``step``: the scheduler's next
    step) may act on a rollout in ``state``."""
    return RolloutState(state) in _ROLLOUT[control]


def rollout_busy(state: RolloutState | str) -> bool:
    """A step is being taken (the platform is being called): a control waits for it to
    end rather than being refused (what a group's pause meets as its steps fall due)."""
    return RolloutState(state) is _R.STEPPING


def rollout_needs_override(control: str, state: RolloutState | str) -> bool:
    """Advancing or resuming past a halt (a regression was seen, whether the staged release
    was taken back or left live) needs the override role."""
    return control in ("advance", "resume") and RolloutState(state) is _R.HALTED


_ROLLOUT_ACTIVE = frozenset({_R.RUNNING, _R.PAUSED, _R.HALTED, _R.STEPPING})


def rollout_refusal(
    action: str, state: RolloutState | str, rollout_id: int | None, app: str
) -> str | None:
    """Why a person's ``gray``, ``gray stop`` or ``publish`` of a version is refused while
    a staged rollout of it (in ``state``) is under way on that platform: its steps would
    undo it, or its gate would judge a share it did not set."""
    if action not in ("gray", "gray stop", "publish") or RolloutState(state) not in (
        _ROLLOUT_ACTIVE
    ):
        return None
    return (
        f"rollout #{rollout_id} of this version is {rollout_words(state)}: it sets the share "
        f"itself; use `rollout {app} advance` or `rollout {app} abort`"
    )


def rollout_controls(state: RolloutState | str) -> list[str]:
    """The controls a rollout card offers in ``state``."""
    return [c for c in ("pause", "resume", "advance", "abort") if rollout_allows(c, state)]


ROLLOUT_STANDINGS = (
    "advanced",
    "at first step",
    "held",
    "paused",
    "halted",
    "completed",
    "aborted",
)
"""Where a fleet's rollouts stand, in the order its card counts them."""
ROLLOUT_LOOK_AT = frozenset({"held", "paused", "halted"})
"""Standings a fleet's card names the apps of (a person may need to look)."""


def rollout_standing(state: RolloutState | str, step: int, *, held: bool) -> str:
    """Where one rollout of a fleet stands (one of :data:`ROLLOUT_STANDINGS`): its own
    final or stopped state, else held (no figures, or a freeze), else whether it has
    advanced past its first step. ``held``: its step is being held."""
    r = RolloutState(state)
    if r in (_R.COMPLETED, _R.ABORTED, _R.HALTED, _R.PAUSED):
        return str(r)
    if held:
        return "held"
    return "advanced" if step > 0 else "at first step"


def rollout_words(state: RolloutState | str) -> str:
    try:
        return _ROLLOUT_WORDS[RolloutState(state)]
    except ValueError:
        return str(state)
