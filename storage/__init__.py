"""miniship's tables, the release state machine and every write (see store.py)."""

from storage.db import describe_url, make_engine, migrate
from storage.states import InvalidTransition, ReleaseState, TimedState
from storage.store import ActionTaken, StaleState, Store, TargetExists, TargetView

__all__ = [
    "ActionTaken",
    "InvalidTransition",
    "ReleaseState",
    "StaleState",
    "Store",
    "TargetExists",
    "TargetView",
    "TimedState",
    "describe_url",
    "make_engine",
    "migrate",
]
