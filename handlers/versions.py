"""The version rule: what a new version may be called, and how versions compare.

A version is numeric ``MAJOR.MINOR.PATCH`` without leading zeros — what Alipay demands,
and what WeChat's free-text ``user_version`` gets too, so both platforms carry the same
string. An app may carry one fixed prefix (``version_prefix = "v"`` in miniship.toml) when
all its platforms take it (WeChat does, Alipay does not); its new versions must then carry
it, and it is ignored when versions are compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["JUMP_COMPONENT", "Version", "VersionError", "jump", "read", "readable"]

JUMP_COMPONENT = 100  # a component this large is more likely a typo than a plan
_STRICT = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
_LOOSE = re.compile(r"[0-9]+(?:\.[0-9]+)*")


class VersionError(ValueError):
    """Not a version by the rule; the message says what to type instead."""


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def read(text: str, prefix: str = "") -> Version:
    """``text`` as a version by the rule (``prefix`` the one the app allows, if any).

    Raises:
        VersionError: saying what is wrong and what to write.
    """
    bare = text.removeprefix(prefix) if prefix else text
    match = _STRICT.fullmatch(bare)
    if match is None:
        raise VersionError(_problem(text, bare, prefix))
    if prefix and bare == text:  # one spelling per version: v1.2.0 and 1.2.0 would be two
        raise VersionError(
            f"`{text}`: this app's versions start with `{prefix}`; write {prefix}{text}"
        )
    return Version(*(int(g) for g in match.groups()))


def _problem(text: str, bare: str, prefix: str) -> str:
    if bare[:1] in ("v", "V"):
        if prefix:
            return f"`{text}`: `{prefix}` is this app's prefix; write {prefix}{bare[1:]}"
        return f"`{text}`: versions have no prefix (Alipay takes digits only); write {bare[1:]}"
    if not _LOOSE.fullmatch(bare):
        return f"`{text}` is not a version: write MAJOR.MINOR.PATCH in digits, e.g. {prefix}1.2.0"
    parts = bare.split(".")
    if any(len(p.lstrip("0")) > 9 for p in parts):
        return f"`{text}` has a part too large to be a version"
    if len(parts) > 3:
        return f"`{text}` has {len(parts)} parts; a version is MAJOR.MINOR.PATCH, e.g. 1.2.0"
    fixed = ".".join(str(int(p)) for p in [*parts, "0", "0"][:3])
    if len(parts) < 3:
        return (
            f"`{text}` is not MAJOR.MINOR.PATCH (three numbers, as Alipay demands); "
            f"write {prefix}{fixed}"
        )
    return f"`{text}` has leading zeros; write {prefix}{fixed}"


def readable(text: str, prefix: str = "") -> Version | None:
    """``text`` as a version to compare with, read leniently: versions made before the rule
    or elsewhere count too (``V1.5`` as 1.5.0, ``2.3`` as 2.3.0, leading zeros dropped);
    None for what has no such reading — a lone number (``153``) is a build counter more
    often than a version, so it is not compared."""
    bare = text.removeprefix(prefix) if prefix else text
    bare = bare[1:] if bare[:1] in ("v", "V") else bare
    if not _LOOSE.fullmatch(bare):
        return None
    parts = bare.split(".")
    if not 2 <= len(parts) <= 3 or any(len(p.lstrip("0")) > 9 for p in parts):
        return None
    return Version(*(int(p) for p in [*parts, "0", "0"][:3]))


def jump(new: Version, highest: Version | None) -> str:
    """Why going from ``highest`` to ``new`` looks unusual ("" when it does not)."""
    big = [str(n) for n in (new.major, new.minor, new.patch) if n >= JUMP_COMPONENT]
    if big:
        return f"{new} has a part of {big[0]}, which looks like a typo"
    if highest is None:
        return ""
    if new.major > highest.major + 1:
        return f"{new} skips from major version {highest.major} to {new.major}"
    if new.major == highest.major and new.minor > highest.minor + 10:
        return f"{new} skips {new.minor - highest.minor - 1} minor versions after {highest}"
    return ""
