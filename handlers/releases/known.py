"""Which versions of an app exist, and the version rule applied to them: a new version must
be higher than every version miniship or a platform knows for the app, and nothing is
published over a higher live version."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from handlers import policy, versions
from handlers.config import AppEntry
from handlers.releases.core import ReleaseCore, explain
from handlers.versions import Version, VersionError
from platforms.errors import ConfigError, PlatformError
from storage.models import Release

__all__ = ["Known", "VersionCheck", "VersionGuard"]

log = logging.getLogger(__name__)

KNOWN_RELEASES = 500  # how far back miniship's own releases are read


@dataclass(frozen=True)
class Known:
    """The versions of one app on one platform, as miniship and the platform know them."""

    platform: str
    live: str | None
    versions: tuple[str, ...]  # every version known there (uploaded, in review, kept…)
    error: str = ""  # the platform could not be asked (what miniship knows is still here)


@dataclass(frozen=True)
class VersionCheck:
    refusal: str = ""  # the version may not be uploaded (nothing is tried)
    jump: str = ""  # allowed, but unusual: ask the person first
    unasked: tuple[str, ...] = ()  # platforms that could not say which versions they hold

    def notes(self) -> tuple[str, ...]:
        """What an upload that went ahead should still say about the check."""
        return self.unasked


class VersionGuard(ReleaseCore):
    async def known(self, app: AppEntry, platform: str) -> Known:
        """What miniship and the platform know of ``app``'s versions there: what it has
        live, in trial and in review, and the versions it keeps."""
        views = [
            v
            for v in await self.store.latest(app.key, KNOWN_RELEASES)
            if v.target.platform == platform
        ]
        mine = [v.release.version for v in views]
        live = next((v.release.version for v in views if policy.is_live(v.state)), None)
        adapter = self.adapters[platform]
        try:
            overview = await adapter.overview(app.key)
            listed = [v.version for v in await adapter.versions(app.key)]
        except (PlatformError, ConfigError) as exc:
            log.warning("versions of %s on %s unknown: %s", app.key, platform, exc)
            return Known(platform, live, tuple(dict.fromkeys(mine)), explain(exc))
        said = [overview.live_version, overview.trial_version]
        if overview.review is not None:
            said.append(overview.review.version)
        found = [v for v in [*mine, *said, *listed] if v]
        return Known(platform, overview.live_version or live, tuple(dict.fromkeys(found)))

    async def check_upload(self, app: AppEntry, names: Sequence[str], version: str) -> VersionCheck:
        """Whether ``version`` may be uploaded to ``names`` (the rule, and every version
        known for the app on any of its platforms), and whether it looks like a typo.

        The same version on another platform is fine (it is the same release); on a
        platform it is refused when the platform has it from outside miniship (miniship's
        own uploads are refused per platform by the upload itself)."""
        try:
            new = versions.read(version, app.version_prefix)
        except VersionError as exc:
            return VersionCheck(refusal=f"Not uploaded: {exc}.")
        everywhere = [p for p in self.adapters if p in app.platforms]
        known = await asyncio.gather(*(self.known(app, p) for p in everywhere))
        prefix = app.version_prefix
        seen = [
            (k, v, parsed)
            for k in known
            for v in k.versions
            if (parsed := versions.readable(v, prefix)) is not None
        ]
        top = max((parsed for _, _, parsed in seen), default=None)
        outside = [
            k
            for k, v, parsed in seen
            if parsed == new and k.platform in names and v not in await self._mine(app, k)
        ]
        if top is not None and (top > new or outside):
            return VersionCheck(refusal=self._not_higher(version, top, known, app))
        unasked = tuple(
            f"could not ask {self.display(k.platform)} which versions it holds ({k.error}); "
            "the version was checked against what miniship knows"
            for k in known
            if k.error
        )
        why = versions.jump(new, top)
        if not why:
            return VersionCheck(unasked=unasked)
        return VersionCheck(
            jump=f"{why}. Alipay versions can never go down, so a mistyped high version "
            f"cannot be undone. Upload {app.key} {version} anyway?",
            unasked=unasked,
        )

    async def _mine(self, app: AppEntry, known: Known) -> set[str]:
        views = await self.store.latest(app.key, KNOWN_RELEASES)
        return {v.release.version for v in views if v.target.platform == known.platform}

    def _not_higher(self, version: str, top: Version, known: Sequence[Known], app: AppEntry) -> str:
        lines = []
        for k in known:
            said = f"live {k.live or 'none'}"
            others = [v for v in k.versions if v != k.live]
            if others:
                said += f"; also known: {', '.join(others[:8])}"
            if k.error:
                said += f" (could not ask {self.display(k.platform)}: {k.error})"
            lines.append(f"  {self.display(k.platform)}: {said}")
        nxt = f"{app.version_prefix}{Version(top.major, top.minor, top.patch + 1)}"
        return (
            f"Not uploaded: {version} is not higher than {app.version_prefix}{top}, which "
            f"{app.key} already has. Versions only go up (Alipay never takes a lower one "
            f"again): upload {nxt} or higher.\n" + "\n".join(lines)
        )

    async def live_above(self, app: AppEntry, release: Release, platform: str) -> str | None:
        """The version live on ``platform`` if it is higher than ``release`` (publishing
        would go back to an older version), else None. Versions made before the version
        rule are compared by upload order."""
        try:
            said = await self.adapters[platform].live_version(app.key)  # one call if it can
        except (PlatformError, ConfigError) as exc:
            log.warning("what is live for %s on %s unknown: %s", app.key, platform, exc)
            said = None
        if said is None:  # nothing live, or not known: what miniship recorded as live
            views = await self.store.latest(app.key, KNOWN_RELEASES)
            said = next(
                (
                    v.release.version
                    for v in views
                    if v.target.platform == platform and policy.is_live(v.state)
                ),
                None,
            )
        mine = versions.readable(release.version, app.version_prefix)
        live = versions.readable(said, app.version_prefix) if said else None
        if mine is not None and live is not None:
            return said if live > mine else None
        newer = await self.store.newer_released(release, platform)
        return newer.release.version if newer is not None else None
