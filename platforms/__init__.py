"""How miniship speaks to mini-program platforms.

The registry below is the one list of platforms. Adding a platform means one adapter
package (``platforms/<name>/``, whose ``__init__`` exports a
:class:`platforms.base.Platform`), one emulator package (``platforms/emulators/<name>/``,
exporting a :class:`platforms.emulators.base.Emulator`) and one line in each table; the
shared adapter tests in ``tests/platforms/test_contract.py`` then run against it unchanged.

An adapter package keeps what the platform *is* (``errors``: its codes explained;
``config``: its settings and per-app section) apart from how it is *spoken to* (``wire``:
one request and its answer, with the tokens, keys and signing beside it), how its answers
are *read* (``reading``: into the value objects of :mod:`platforms.base`) and what it
*does* (the operations, one mixin per concern, put together in ``adapter``).
``platforms/wechat/`` and ``platforms/alipay/`` are the two examples; each package's
docstring lists its modules.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from platforms.base import Platform
    from platforms.emulators.base import Emulator

__all__ = ["EMULATORS", "PLATFORMS", "emulator_class", "names", "platform_class"]

PLATFORMS: dict[str, str] = {
    "wechat": "platforms.wechat:WeChatPlatform",
    "alipay": "platforms.alipay:AlipayPlatform",
}

EMULATORS: dict[str, str] = {
    "wechat": "platforms.emulators.wechat:WeChatEmulator",
    "alipay": "platforms.emulators.alipay:AlipayEmulator",
}


def names() -> list[str]:
    """Platform names in a stable order, as typed in commands."""
    return list(PLATFORMS)


def _load(table: dict[str, str], name: str) -> type:
    try:
        module, _, attr = table[name].partition(":")
    except KeyError:
        raise KeyError(f"unknown platform {name!r}; known: {', '.join(table)}") from None
    cls: type = getattr(import_module(module), attr)
    return cls


def platform_class(name: str) -> type[Platform]:
    return _load(PLATFORMS, name)


def emulator_class(name: str) -> type[Emulator]:
    return _load(EMULATORS, name)
