"""The release use cases: the same whichever way a command arrives (console, Slack, a
scheduled job).

::

    results   what they return (plain data)      core      lookups, locks, fan-out, settle, Step
    review    upload, qr, submit, expedite,      publish   publish (the claim), gray
              withdraw, quotas                   live      rollback, offline
    watcher   ask the platforms, apply what they say, announce it; status, history

Each use case asks the release policy (:mod:`handlers.policy`) whether it may act, calls
the platforms (concurrently when a command covers several), moves the state machine with
compare-and-set, and writes one event per platform with the platform's answer.
"""

from __future__ import annotations

from handlers.releases.core import Listener, Step, attempt, explain
from handlers.releases.live import LiveActions
from handlers.releases.publish import PublishActions
from handlers.releases.results import (
    ActionResult,
    Actor,
    AppStatus,
    Change,
    CommandRefused,
    Outcome,
    PlatformResult,
    PlatformStatus,
)
from handlers.releases.review import ReviewActions, spent_words
from handlers.releases.watcher import Watcher

__all__ = [
    "ActionResult",
    "Actor",
    "AppStatus",
    "Change",
    "CommandRefused",
    "Listener",
    "Outcome",
    "PlatformResult",
    "PlatformStatus",
    "ReleaseService",
    "Step",
    "attempt",
    "explain",
    "spent_words",
]


class ReleaseService(ReviewActions, PublishActions, LiveActions, Watcher):
    """Every release use case, over one store and one adapter per platform."""
