"""miniship's tables, the release state machine and every write (see store.py)."""

from storage.db import describe_url, make_engine, migrate
from storage.states import InvalidTransition, ReleaseState
from storage.store import StaleState, Store, TargetExists, TargetView

__all__ = [
    "InvalidTransition",
    "ReleaseState",
    "StaleState",
    "Store",
    "TargetExists",
    "TargetView",
    "describe_url",
    "make_engine",
    "migrate",
]
