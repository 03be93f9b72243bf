"""Telling the listeners (the console, Slack) of something: each hears it in turn, and
one that fails is logged without keeping it from the others."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

__all__ = ["tell"]

log = logging.getLogger(__name__)

T = TypeVar("T")


async def tell(listeners: Iterable[Callable[[T], Awaitable[None]]], news: T, failed: str) -> None:
    """Tell each of ``listeners`` (as they are now) ``news``; one that raises is logged
    with ``failed`` ("could not …") and the rest still hear."""
    for hear in list(listeners):
        try:
            await hear(news)
        except Exception:
            log.exception(failed)
