"""The shared adapter suite: every platform in the registry passes it unchanged.

Each test runs an adapter against its own emulator over real HTTP on loopback. A new
platform only adds itself to ``platforms.PLATFORMS`` / ``EMULATORS``; nothing here names one.

What is covered, for every adapter:

- configuration: missing and wrong settings, bad ``[apps.<key>.<platform>]`` sections and
  unknown apps are a :class:`ConfigError` naming the setting;
- the happy path of every core operation and of every optional one (``OPS``); an optional
  operation the platform lacks raises :class:`Unsupported` with a clear message and sends
  nothing, whichever way the platform answers;
- token expiry in the middle of every operation;
- each injected fault (busy, timeout, HTTP 5xx, rate limit, malformed, unsigned) on every
  read (retried, or reported as a typed error) and on every change (sent exactly once, then
  checked with the platform; the outcome reported matches what the platform shows);
- back-off: ``Platform.sleep`` is a fake that records the delays, which must grow.
"""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, get_args, get_origin
from urllib.parse import urlsplit

import httpx
import pytest
from pydantic import BaseModel, BeforeValidator, SecretStr, ValidationError
from pydantic.fields import FieldInfo

import platforms
from platforms.base import (
    REVIEW_IMAGES_MAX,
    Authorization,
    Exchange,
    Platform,
    Quota,
    ReviewImage,
    ReviewState,
    Template,
    TrialCode,
    VersionInfo,
    recording,
    resolve_secret,
)
from platforms.emulators.base import Emulator
from platforms.errors import (
    AlreadyInReview,
    AuthError,
    BadResponse,
    ConfigError,
    InvalidInput,
    InvalidState,
    NotFound,
    OutcomeUnknown,
    PlatformError,
    PlatformUnavailable,
    QuotaExceeded,
    Unsupported,
)
from platforms.push import PushRejected, PushRequest
from platforms.transport import CONNECTIONS, Transport
from tests.helpers import FakeSleep, World, open_world

NOTES = "Release notes for the reviewers: new shop pages."
REDIRECT = "https://miniship.example.com/connect/done"
UNKNOWN_ID = "424242424"
VERSION_STATES = frozenset(
    {"live", "in review", "approved", "gray", "development", "rejected", "offline"}
    | {"earlier release"}
)


# =========================================================================== the stage


class Recorder(httpx.AsyncBaseTransport):
    """Real HTTP that keeps every answer body (``None`` when no answer came), in order:
    over the adapters' own transport (platforms/transport.py), so every failure the suite
    injects passes through what production uses."""

    def __init__(self) -> None:
        self.inner = Transport(limits=CONNECTIONS)
        self.answers: list[bytes | None] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
            await response.aclose()
        except BaseException:
            self.answers.append(None)
            raise
        self.answers.append(body)
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=body)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Watch:
    """Every request the emulator received, as ``(api, injected fault)``, in order.

    It wraps :meth:`Emulator.take_fault`, which every emulator calls once per request.
    """

    def __init__(self, emulator: Emulator) -> None:
        self.requests: list[tuple[str, str | None]] = []
        original = emulator.take_fault

        def take_fault(api: str) -> str | None:
            fault = original(api)
            self.requests.append((api, fault))
            return fault

        setattr(emulator, "take_fault", take_fault)  # noqa: B010 - an instance override

    def mark(self) -> int:
        return len(self.requests)

    def since(self, mark: int) -> Counter[str]:
        return Counter(api for api, _ in self.requests[mark:])

    def faulted(self, mark: int) -> list[int]:
        """Indexes (into ``requests`` and the recorder's answers) of faulted requests."""
        return [i for i, (_, fault) in enumerate(self.requests) if i >= mark and fault]


@dataclass
class Stage:
    """One platform under test: the world, and what the test watches of it."""

    world: World
    watch: Watch
    recorder: Recorder
    sleeps: list[float]

    @property
    def adapter(self) -> Platform:
        return self.world.adapter

    @property
    def emulator(self) -> Emulator:
        return self.world.emulator

    @property
    def app(self) -> str:
        return self.world.app

    @property
    def name(self) -> str:
        return self.world.name

    def api(self, operation: str) -> str | None:
        """The emulator's API for ``operation`` (``Emulator.OPERATIONS``), if it names one."""
        return self.emulator.OPERATIONS.get(operation)


@pytest.fixture(params=platforms.names())
async def stage(request: pytest.FixtureRequest) -> AsyncIterator[Stage]:
    recorder = Recorder()
    # Real seconds: a "timeout" fault costs each of its cases this long, and an ordinary
    # request on a loaded 2-core CI machine must never take as long (0.5 s once did).
    async with open_world(request.param, client_timeout=1.5, transport=recorder) as w:
        sleeper = FakeSleep(w.clock)
        w.adapter.sleep = sleeper
        yield Stage(w, Watch(w.emulator), recorder, sleeper.delays)


@pytest.fixture
def world(stage: Stage) -> World:
    return stage.world


# --------------------------------------------------------------------------- flows


async def uploaded(s: Stage, version: str = "1.0.0") -> None:
    await s.adapter.upload(s.app, version, NOTES)


async def submitted(s: Stage, version: str = "1.0.0") -> str:
    await uploaded(s, version)
    return (await s.adapter.submit(s.app, version, NOTES)).ref


async def approved(s: Stage, version: str = "1.0.0") -> str:
    ref = await submitted(s, version)
    s.world.decide_reviews()
    return ref


async def released(s: Stage, version: str = "1.0.0") -> str:
    ref = await approved(s, version)
    await s.adapter.publish(s.app, version, ref)
    return ref


async def live(s: Stage) -> str | None:
    said = (await s.adapter.overview(s.app)).live_version
    assert await s.adapter.live_version(s.app) == said  # the one-call answer agrees
    return said


async def state_of(s: Stage, version: str, ref: str) -> ReviewState:
    return (await s.adapter.review_status(s.app, version, ref)).state


def assert_clear_unsupported(s: Stage, exc: Unsupported, what: str) -> None:
    """An Unsupported that says which platform lacks what, in words a person can act on."""
    assert exc.platform == s.name
    text = str(exc)
    assert s.adapter.display_name in text, f"{what}: {text!r} does not name the platform"
    assert len(exc.explanation) > len(s.adapter.display_name) + 10, f"{what}: {text!r}"


# =========================================================================== the operations

Ctx = dict[str, Any]


@dataclass(frozen=True)
class Op:
    """One operation of :class:`Platform`, with how to set the stage for it and check it.

    ``prepare`` brings the app to where the operation makes sense and returns what ``run``
    needs; ``check`` asserts on the result and its effect; ``shows`` (changes) asks the
    platform, through the adapter, whether the change happened. ``api`` is the key of
    ``Emulator.OPERATIONS`` that carries it (reads without one take faults on their first
    request).
    """

    name: str
    run: Callable[[Stage, Ctx], Awaitable[Any]]
    check: Callable[[Stage, Ctx, Any], Awaitable[None]]
    prepare: Callable[[Stage], Awaitable[Ctx]]
    change: bool = False
    retried: bool = True  # a read the adapter retries (False: it may change something first)
    optional: bool = False
    api: str | None = None
    shows: Callable[[Stage, Ctx], Awaitable[bool]] | None = None

    def __str__(self) -> str:
        return self.name


async def _warm(s: Stage) -> Ctx:
    """Nothing to prepare but the tokens, so injected faults hit the operation itself."""
    await s.adapter.overview(s.app)
    return {}


async def _uploaded(s: Stage) -> Ctx:
    await uploaded(s)
    return {}


async def _submitted(s: Stage) -> Ctx:
    return {"ref": await submitted(s)}


async def _approved(s: Stage) -> Ctx:
    return {"ref": await approved(s)}


async def _released(s: Stage) -> Ctx:
    return {"ref": await released(s)}


# -- upload


async def _run_upload(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.upload(s.app, "1.0.0", NOTES)


async def _upload_shows(s: Stage, ctx: Ctx) -> bool:
    return (await s.adapter.overview(s.app)).trial_version == "1.0.0"


async def _check_upload(s: Stage, ctx: Ctx, result: Any) -> None:
    assert result.version == "1.0.0" and result.detail
    assert await _upload_shows(s, ctx)


# -- submit


async def _run_submit(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.submit(s.app, "1.0.0", NOTES)


async def _submit_shows(s: Stage, ctx: Ctx) -> bool:
    review = (await s.adapter.overview(s.app)).review
    return (
        review is not None
        and review.version == "1.0.0"
        and review.state in (ReviewState.IN_REVIEW, ReviewState.DELAYED)
    )


async def _check_submit(s: Stage, ctx: Ctx, result: Any) -> None:
    assert result.ref
    assert await state_of(s, "1.0.0", result.ref) is ReviewState.IN_REVIEW
    assert await _submit_shows(s, ctx)


# -- review_status


async def _run_status(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.review_status(s.app, "1.0.0", ctx["ref"])


async def _check_status(s: Stage, ctx: Ctx, result: Any) -> None:
    assert result.state is ReviewState.IN_REVIEW
    assert result.version == "1.0.0" and result.decided_at is None


# -- withdraw


async def _run_withdraw(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.withdraw(s.app, "1.0.0", ctx["ref"])


async def _withdraw_shows(s: Stage, ctx: Ctx) -> bool:
    return await state_of(s, "1.0.0", ctx["ref"]) is ReviewState.WITHDRAWN


async def _check_line(s: Stage, ctx: Ctx, result: Any) -> None:
    assert isinstance(result, str) and result.strip()


async def _check_withdraw(s: Stage, ctx: Ctx, result: Any) -> None:
    await _check_line(s, ctx, result)
    assert await _withdraw_shows(s, ctx)


# -- publish


async def _run_publish(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.publish(s.app, "1.0.0", ctx["ref"])


async def _publish_shows(s: Stage, ctx: Ctx) -> bool:
    return await live(s) == "1.0.0"


async def _check_publish(s: Stage, ctx: Ctx, result: Any) -> None:
    await _check_line(s, ctx, result)
    assert await _publish_shows(s, ctx)
    assert await state_of(s, "1.0.0", ctx["ref"]) is ReviewState.RELEASED


# -- overview


async def _run_overview(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.overview(s.app)


async def _check_overview(s: Stage, ctx: Ctx, result: Any) -> None:
    assert result.trial_version == "1.0.0" and result.live_version is None
    assert result.gray is None
    assert all(isinstance(line, str) for line in result.lines)


# -- trial_code

IMAGE_MAGIC = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
    "image/gif": b"GIF8",
}


async def _run_trial_code(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.trial_code(s.app, "1.0.0")


async def _check_trial_code(s: Stage, ctx: Ctx, result: Any) -> None:
    assert isinstance(result, TrialCode)
    assert result.mime in IMAGE_MAGIC, result.mime
    assert result.image.startswith(IMAGE_MAGIC[result.mime]), "the image is not a " + result.mime
    assert result.extension in ("png", "jpg", "gif")
    assert result.version in (None, "1.0.0")
    assert not result.url or result.url.startswith(("http://", "https://"))


# -- review_images: what a rejection points at (the emulators reject on "#reject")


async def _rejected(s: Stage) -> Ctx:
    notes = f"{NOTES} #reject"
    await s.adapter.upload(s.app, "1.0.0", notes)
    ref = (await s.adapter.submit(s.app, "1.0.0", notes)).ref
    s.world.decide_reviews()
    return {"ref": ref}


async def _run_review_images(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.review_images(s.app, "1.0.0", ctx["ref"])


async def _check_review_images(s: Stage, ctx: Ctx, result: Any) -> None:
    status = await s.adapter.review_status(s.app, "1.0.0", ctx["ref"])
    assert status.state is ReviewState.REJECTED and status.screenshots, status
    assert isinstance(result, list) and 1 <= len(result) <= REVIEW_IMAGES_MAX, result
    for image in result:
        assert isinstance(image, ReviewImage) and image.title and image.source, image
        if image.image:  # fetched: a whole image of the type it says
            assert image.mime in IMAGE_MAGIC, image.mime
            assert image.image.startswith(IMAGE_MAGIC[image.mime])
            assert image.extension in ("png", "jpg", "gif")
        else:  # a link only, for whoever shows it to post
            assert image.url.startswith(("http://", "https://")), image
    assert len({image.source for image in result}) == len(result), "an image came twice"


# -- expedite


async def _run_expedite(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.expedite(s.app, "1.0.0", ctx.get("ref", "1.0.0"))


async def _check_expedite(s: Stage, ctx: Ctx, result: Any) -> None:
    await _check_line(s, ctx, result)
    assert await state_of(s, "1.0.0", ctx["ref"]) in (ReviewState.IN_REVIEW, ReviewState.DELAYED)


# -- quotas


async def _run_quotas(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.quotas(s.app)


async def _check_quotas(s: Stage, ctx: Ctx, result: Any) -> None:
    assert isinstance(result, list)
    seen: set[tuple[str, str]] = set()
    for quota in result:
        assert isinstance(quota, Quota)
        assert quota.action in ("submit", "expedite", "withdraw"), quota
        assert quota.what.strip() and quota.period in ("day", "month"), quota
        assert (quota.action, quota.period) not in seen, f"{quota.action} listed twice"
        seen.add((quota.action, quota.period))
        if quota.remaining is not None and quota.limit is not None:
            assert 0 <= quota.remaining <= quota.limit, quota
        if quota.counted_here:
            assert quota.remaining is None, "a limit counted here has no platform answer"


# -- gray / stop_gray: a staged release is of an update, while an earlier version is live


def gray_percent(s: Stage) -> int:
    steps = type(s.adapter).gray_steps
    return steps[0] if steps else 10


async def _update_approved(s: Stage) -> Ctx:
    await released(s, "1.0.0")
    return {"ref": await approved(s, "1.0.1")}


async def _run_gray(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.gray(s.app, "1.0.1", gray_percent(s))


async def _gray_shows(s: Stage, ctx: Ctx) -> bool:
    return (await s.adapter.overview(s.app)).gray is not None


async def _check_gray(s: Stage, ctx: Ctx, result: Any) -> None:
    await _check_line(s, ctx, result)
    overview = await s.adapter.overview(s.app)
    plan = overview.gray
    assert plan is not None, "overview shows no gray release"
    assert plan.percent == gray_percent(s) and plan.version in (None, "1.0.1"), plan
    assert plan.since is None or plan.since.tzinfo is not None
    assert overview.live_version == "1.0.0"
    assert await state_of(s, "1.0.1", ctx["ref"]) is ReviewState.GRAY


async def _graying(s: Stage) -> Ctx:
    ctx = await _update_approved(s)
    await s.adapter.gray(s.app, "1.0.1", gray_percent(s))
    return ctx


async def _run_stop_gray(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.stop_gray(s.app, "1.0.1")


async def _gray_stopped(s: Stage, ctx: Ctx) -> bool:
    return not await _gray_shows(s, ctx)


async def _check_stop_gray(s: Stage, ctx: Ctx, result: Any) -> None:
    await _check_line(s, ctx, result)
    assert await _gray_stopped(s, ctx)
    assert await live(s) == "1.0.0"
    assert await state_of(s, "1.0.1", ctx["ref"]) is ReviewState.APPROVED


# -- rollback / offline


async def _two_releases(s: Stage) -> Ctx:
    await released(s, "1.0.0")
    return {"ref": await released(s, "1.0.1")}


async def _run_rollback(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.rollback(s.app, "1.0.1", None)


async def _rolled_back(s: Stage, ctx: Ctx) -> bool:
    return await live(s) == "1.0.0"


async def _check_rollback(s: Stage, ctx: Ctx, result: Any) -> None:
    await _check_line(s, ctx, result)
    assert await _rolled_back(s, ctx)


async def _run_offline(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.offline(s.app, "1.0.0")


async def _is_offline(s: Stage, ctx: Ctx) -> bool:
    return await live(s) is None


async def _check_offline(s: Stage, ctx: Ctx, result: Any) -> None:
    await _check_line(s, ctx, result)
    assert await _is_offline(s, ctx)


# -- versions


async def _released_and_uploaded(s: Stage) -> Ctx:
    ctx = await _released(s)
    await uploaded(s, "1.0.1")
    return ctx


async def _run_versions(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.versions(s.app)


def _aware(at: datetime | None) -> bool:
    return at is None or at.tzinfo is not None


async def _check_versions(s: Stage, ctx: Ctx, result: Any) -> None:
    assert isinstance(result, list) and all(isinstance(v, VersionInfo) for v in result)
    if not result:
        return  # the platform lists no versions (the interface's default)
    names = [v.version for v in result]
    assert {"1.0.0", "1.0.1"} <= set(names), names
    assert names.index("1.0.1") < names.index("1.0.0"), f"not newest first: {names}"
    assert next(v for v in result if v.version == "1.0.0").state == "live"
    for info in result:
        assert info.state in VERSION_STATES, info
        assert _aware(info.created_at), info


# -- templates


async def _run_templates(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.templates()


async def _check_templates(s: Stage, ctx: Ctx, result: Any) -> None:
    assert isinstance(result, list) and all(isinstance(t, Template) for t in result)
    assert any(not t.draft for t in result), "the app uploads from a template; none is listed"
    for template in result:
        assert template.id and template.version, template
        assert _aware(template.created_at), template


async def _library(s: Stage) -> Ctx:
    listed = await s.adapter.templates()
    return {
        "draft": next((t.id for t in listed if t.draft), None),
        "template": next(t.id for t in listed if not t.draft),
    }


async def _run_add_template(s: Stage, ctx: Ctx) -> Any:
    if ctx.get("draft") is not None:
        return await s.adapter.add_template(ctx["draft"])
    try:  # no draft to promote: an unknown draft must be refused as such
        await s.adapter.add_template(UNKNOWN_ID)
    except NotFound as exc:
        return exc
    raise AssertionError(f"add_template({UNKNOWN_ID!r}) of an unknown draft did not fail")


async def _check_add_template(s: Stage, ctx: Ctx, result: Any) -> None:
    if ctx.get("draft") is None:
        assert isinstance(result, NotFound) and result.platform == s.name
        return
    await _check_line(s, ctx, result)
    assert len([t for t in await s.adapter.templates() if not t.draft]) >= 2


async def _run_delete_template(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.delete_template(ctx.get("template", UNKNOWN_ID))


async def _template_gone(s: Stage, ctx: Ctx) -> bool:
    return ctx["template"] not in {t.id for t in await s.adapter.templates()}


async def _check_delete_template(s: Stage, ctx: Ctx, result: Any) -> None:
    await _check_line(s, ctx, result)
    assert await _template_gone(s, ctx)


# -- authorization


async def _run_connect_link(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.connect_link(s.app, REDIRECT)


async def _check_connect_link(s: Stage, ctx: Ctx, result: Any) -> None:
    assert isinstance(result, str) and urlsplit(result).scheme in ("http", "https"), result


async def _nothing(s: Stage) -> Ctx:
    return {}


async def _run_complete_connect(s: Stage, ctx: Ctx) -> Any:
    try:  # a callback the platform never sent (no code) must be refused, not crash
        return await s.adapter.complete_connect(s.app, {"state": "forged"})
    except (InvalidInput, AuthError, NotFound) as exc:
        return exc


async def _check_complete_connect(s: Stage, ctx: Ctx, result: Any) -> None:
    assert isinstance(result, PlatformError) and not isinstance(result, Unsupported), result
    assert result.platform == s.name and result.explanation


async def _run_authorization(s: Stage, ctx: Ctx) -> Any:
    return await s.adapter.authorization(s.app)


async def _check_authorization(s: Stage, ctx: Ctx, result: Any) -> None:
    if result is None:
        return  # the platform has no such notion
    assert isinstance(result, Authorization)
    assert result.platform_app_id and result.app == s.app and result.authorized
    assert len(result.permissions) == len(result.permission_names)


CORE = (
    Op("upload", _run_upload, _check_upload, _warm, change=True, api="upload",
       shows=_upload_shows),
    Op("submit", _run_submit, _check_submit, _uploaded, change=True, api="submit",
       shows=_submit_shows),
    Op("review_status", _run_status, _check_status, _submitted, api="status"),
    Op("withdraw", _run_withdraw, _check_withdraw, _submitted, change=True, api="withdraw",
       shows=_withdraw_shows),
    Op("publish", _run_publish, _check_publish, _approved, change=True, api="publish",
       shows=_publish_shows),
    Op("overview", _run_overview, _check_overview, _uploaded),
)  # fmt: skip

_OPTIONAL = (
    Op("trial_code", _run_trial_code, _check_trial_code, _uploaded, api="trial_code",
       retried=False),  # Alipay first makes the version the trial version
    Op("review_images", _run_review_images, _check_review_images, _rejected,
       api="review_images"),
    Op("expedite", _run_expedite, _check_expedite, _submitted, change=True, api="expedite"),
    Op("quotas", _run_quotas, _check_quotas, _warm, api="quotas"),
    Op("gray", _run_gray, _check_gray, _update_approved, change=True, api="gray",
       shows=_gray_shows),
    Op("stop_gray", _run_stop_gray, _check_stop_gray, _graying, change=True, api="stop_gray",
       shows=_gray_stopped),
    Op("rollback", _run_rollback, _check_rollback, _two_releases, change=True, api="rollback",
       shows=_rolled_back),
    Op("offline", _run_offline, _check_offline, _released, change=True, api="offline",
       shows=_is_offline),
    Op("versions", _run_versions, _check_versions, _released_and_uploaded, api="versions"),
    Op("templates", _run_templates, _check_templates, _warm, api="templates"),
    Op("add_template", _run_add_template, _check_add_template, _library, change=True,
       api="add_template"),
    Op("delete_template", _run_delete_template, _check_delete_template, _library, change=True,
       api="delete_template", shows=_template_gone),
    Op("connect_link", _run_connect_link, _check_connect_link, _nothing),
    Op("complete_connect", _run_complete_connect, _check_complete_connect, _nothing),
    Op("authorization", _run_authorization, _check_authorization, _warm, api="authorization"),
)  # fmt: skip
OPTIONAL = tuple(dataclasses.replace(op, optional=True) for op in _OPTIONAL)
OPS = CORE + OPTIONAL
READS = tuple(op for op in OPS if not op.change and op.prepare is not _nothing)
NO_APP = ("templates", "add_template", "delete_template")
APP_OPS = tuple(op for op in OPS if op.name not in NO_APP)


def each(ops: tuple[Op, ...]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("op", ops, ids=str)


async def prepare(s: Stage, op: Op) -> tuple[Ctx, Unsupported | None]:
    """``op.prepare``; when a prerequisite is an operation the platform lacks, its error."""
    try:
        return await op.prepare(s), None
    except Unsupported as exc:
        assert op.optional, f"preparing core operation {op} met {exc!r}"
        return {}, exc


async def prepared_or_skip(s: Stage, op: Op) -> Ctx:
    ctx, missing = await prepare(s, op)
    if missing is not None:
        pytest.skip(f"{s.name} lacks what {op} needs: {missing}")
    return ctx


async def outcome(s: Stage, op: Op, ctx: Ctx) -> Any:
    """The result of ``op``, or the PlatformError it raised; skips an unsupported one."""
    try:
        return await op.run(s, ctx)
    except Unsupported as exc:
        assert op.optional, f"core operation {op} is Unsupported: {exc}"
        pytest.skip(f"{s.name} does not offer {op}")
    except PlatformError as exc:
        return exc


# =========================================================================== happy paths


@each(OPS)
async def test_operation(stage: Stage, op: Op) -> None:
    """Every core operation works; every optional one works or is clearly Unsupported."""
    s = stage
    ctx, missing = await prepare(s, op)
    mark = s.watch.mark()
    try:
        with recording() as log:
            result = await op.run(s, ctx)
    except Unsupported as exc:
        assert op.optional, f"core operation {op} raised {exc!r}"
        assert_clear_unsupported(s, exc, op.name)
        assert s.watch.since(mark) == Counter(), f"{op} sent requests before saying Unsupported"
        return
    assert missing is None, f"{op} works although its prerequisite is Unsupported: {missing}"
    await op.check(s, ctx, result)
    assert_no_secret_values(s.world, log)


def test_class_attributes_are_consistent(stage: Stage) -> None:
    cls = type(stage.adapter)
    assert cls.name == stage.name and cls.display_name and cls.docs_url.startswith("https://")
    steps = cls.gray_steps
    if steps is not None:
        assert list(steps) == sorted(set(steps)) and all(1 <= p <= 100 for p in steps), steps
    assert isinstance(cls.rollback_to_any, bool)
    assert isinstance(cls.single_trial_version, bool)
    assert {"upload", "submit", "status", "withdraw", "publish"} <= set(stage.emulator.OPERATIONS)


async def test_release_happy_path(world: World) -> None:
    a, app = world.adapter, world.app
    up = await a.upload(app, "1.0.0", "first release")
    assert up.version == "1.0.0"
    sub = await a.submit(app, "1.0.0", "first release")
    assert sub.ref
    status = await a.review_status(app, "1.0.0", sub.ref)
    assert status.state is ReviewState.IN_REVIEW
    world.decide_reviews()
    status = await a.review_status(app, "1.0.0", sub.ref)
    assert status.state is ReviewState.APPROVED
    assert status.decided_at is not None and status.decided_at.tzinfo is not None
    await a.publish(app, "1.0.0", sub.ref)
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.RELEASED
    assert (await a.overview(app)).live_version == "1.0.0"


async def test_upload_from_another_template(stage: Stage) -> None:
    """``template`` overrides the app's template: an unknown one is refused, nothing uploaded;
    the app's own template, given explicitly as text, works."""
    s = stage
    with pytest.raises(NotFound) as err:
        await s.adapter.upload(s.app, "1.0.0", NOTES, template=UNKNOWN_ID)
    assert err.value.platform == s.name and err.value.code
    assert (await s.adapter.overview(s.app)).trial_version is None
    own = getattr(s.adapter.apps[s.app], "template_id", None)
    if own is not None:
        result = await s.adapter.upload(s.app, "1.0.0", NOTES, template=str(own))
        assert result.version == "1.0.0"
        assert (await s.adapter.overview(s.app)).trial_version == "1.0.0"


async def test_submit_asking_for_expedite(stage: Stage) -> None:
    s = stage
    await uploaded(s)
    sub = await s.adapter.submit(s.app, "1.0.0", NOTES, expedite=True)
    assert sub.ref and sub.detail
    assert await state_of(s, "1.0.0", sub.ref) is ReviewState.IN_REVIEW


async def test_rejection_carries_reason(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "try #reject")
    sub = await a.submit(app, "1.0.0", "try #reject")
    world.decide_reviews()
    status = await a.review_status(app, "1.0.0", sub.ref)
    assert status.state is ReviewState.REJECTED
    assert status.reason


async def test_withdraw(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    sub = await a.submit(app, "1.0.0", "notes")
    await a.withdraw(app, "1.0.0", sub.ref)
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.WITHDRAWN


async def test_second_review_is_refused(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes")
    await a.upload(app, "1.0.1", "notes")
    with pytest.raises(AlreadyInReview) as err:
        await a.submit(app, "1.0.1", "notes")
    assert err.value.code and err.value.platform == world.name


async def test_publish_before_approval_is_refused(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    sub = await a.submit(app, "1.0.0", "notes")
    with pytest.raises(InvalidState):
        await a.publish(app, "1.0.0", sub.ref)


async def test_single_trial_version(world: World) -> None:
    """Whether an older upload can still be submitted is what ``single_trial_version`` says."""
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.upload(app, "1.0.1", "notes")
    if type(a).single_trial_version:
        with pytest.raises(InvalidState):
            await a.submit(app, "1.0.0", "notes")
    else:
        sub = await a.submit(app, "1.0.0", "notes")
        assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW


async def test_gray_percent_is_checked(stage: Stage) -> None:
    """A share the platform does not allow is refused as input; no gray release starts."""
    s = stage
    await _update_approved(s)
    steps = type(s.adapter).gray_steps
    wrong = [0, 101] + [p for p in (5, 20, 99) if steps is not None and p not in steps]
    for percent in wrong:
        try:
            await s.adapter.gray(s.app, "1.0.1", percent)
        except Unsupported:
            pytest.skip(f"{s.name} has no gray release")
        except InvalidInput as exc:
            assert exc.platform == s.name and exc.explanation
        else:
            raise AssertionError(f"gray at {percent}% was accepted (steps {steps})")
    assert (await s.adapter.overview(s.app)).gray is None


async def test_gray_refuses_a_version_that_is_not_approved(stage: Stage) -> None:
    s = stage
    await released(s, "1.0.0")
    await submitted(s, "1.0.1")
    try:
        await s.adapter.gray(s.app, "1.0.1", gray_percent(s))
    except Unsupported:
        pytest.skip(f"{s.name} has no gray release")
    except InvalidState as exc:
        assert exc.explanation
    else:
        raise AssertionError("a version in review went to gray release")
    assert (await s.adapter.overview(s.app)).gray is None


async def test_rollback_target(stage: Stage) -> None:
    """``rollback_to_any``: a chosen earlier version is honoured, or refused and nothing moves.
    A stale ``live`` is refused either way."""
    s = stage
    for version in ("1.0.0", "1.0.1", "1.0.2"):
        await released(s, version)
    try:
        await s.adapter.rollback(s.app, "1.0.1", None)  # not the live version
    except Unsupported:
        pytest.skip(f"{s.name} has no rollback")
    except InvalidState as exc:
        assert exc.explanation
    else:
        raise AssertionError("a rollback from a version that is not live was carried out")
    assert await live(s) == "1.0.2"
    if type(s.adapter).rollback_to_any:
        await s.adapter.rollback(s.app, "1.0.2", "1.0.0")
        assert await live(s) == "1.0.0"
    else:
        with pytest.raises((InvalidState, InvalidInput)) as err:
            await s.adapter.rollback(s.app, "1.0.2", "1.0.0")
        assert not isinstance(err.value, Unsupported)
        assert await live(s) == "1.0.2"
        await s.adapter.rollback(s.app, "1.0.2", "1.0.1")  # the previous one, named
        assert await live(s) == "1.0.1"


# =========================================================================== configuration


def _env_names(cls: type[BaseModel], name: str, info: FieldInfo) -> set[str]:
    """The names a person may know a setting by: its env variable(s) and field name."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    names = {name, f"{prefix}{name}".upper()}
    alias = info.validation_alias
    choices = getattr(alias, "choices", [alias] if isinstance(alias, str) else [])
    names |= {c.upper() for c in choices if isinstance(c, str)}
    return names


def _named(text: str, names: set[str]) -> bool:
    return any(n in text for n in names)


async def _push_for(s: Stage) -> PushRequest | None:
    """A push the emulator owes now (after a decided review), as the endpoint gets it."""
    s.emulator.push_url = "http://127.0.0.1:9/push/" + s.name
    await approved(s, "0.9.0")
    pushes = s.emulator.due_pushes()
    s.emulator.push_url = None
    if not pushes:
        return None
    push = pushes[-1]
    return PushRequest({}, dict(push.params), push.body, push.content_type)


async def _config_error(
    s: Stage, settings: Any, apps: dict[str, Any], version: str, push: PushRequest | None
) -> tuple[ConfigError | None, list[str]]:
    """Build an adapter from ``settings``/``apps`` and use it until a ConfigError shows:
    building, an upload, reading a push. Returns it (or None) and what happened instead."""
    seen: list[str] = []
    try:
        adapter = type(s.adapter)(settings, apps, sender=s.adapter.sender, clock=s.world.clock)
    except ConfigError as exc:
        return exc, seen
    adapter.sleep = FakeSleep(s.world.clock)
    try:
        await adapter.upload(s.app, version, NOTES)
        seen.append("upload worked")
    except ConfigError as exc:
        return exc, seen
    except PlatformError as exc:
        seen.append(f"upload: {exc!r}")
    if push is not None:
        try:
            await adapter.read_push(push)
            seen.append("read_push worked")
        except ConfigError as exc:
            return exc, seen
        except (PlatformError, PushRejected, NotImplementedError) as exc:
            seen.append(f"read_push: {exc!r}")
    return None, seen


async def test_missing_settings_are_named(stage: Stage) -> None:
    """Every credential the emulator provisioned is needed for something: without it the
    adapter refuses (when built, on the first call, or reading a push) with a ConfigError
    naming the setting."""
    s = stage
    settings = s.adapter.settings
    cls = type(settings)
    push = await _push_for(s)
    checked = []
    for i, (name, info) in enumerate(cls.model_fields.items()):
        value, default = getattr(settings, name), info.default
        if info.is_required() or not value or default:
            continue  # not given, or falls back to a real default (e.g. the live API URL)
        broken = settings.model_copy(update={name: default})
        error, seen = await _config_error(s, broken, dict(s.adapter.apps), f"1.{i}.0", push)
        names = _env_names(cls, name, info)
        assert error is not None, f"without {name} there was no ConfigError: {seen}"
        assert _named(str(error), names), f"{error} does not name {sorted(names)}"
        checked.append(name)
    assert checked


async def test_wrong_url_settings_are_named(stage: Stage) -> None:
    s = stage
    settings = s.adapter.settings
    cls = type(settings)
    urls = [n for n in cls.model_fields if str(getattr(settings, n)).startswith("http")]
    assert urls, "the adapter has a base URL setting"
    for bad in ("api.example.com/no-scheme", "ftp://example.com/x", "http://127.0.0.1:99999/x"):
        for name in urls:
            names = _env_names(cls, name, cls.model_fields[name])
            try:
                wrong = cls.model_validate({**settings.model_dump(), name: bad})
            except ValidationError as exc:  # refused when the settings are read
                assert name in str(exc), exc
                continue
            error, seen = await _config_error(s, wrong, dict(s.adapter.apps), "1.0.0", None)
            assert error is not None, f"{name}={bad!r} was not refused: {seen}"
            assert _named(str(error), names), f"{error} does not name {sorted(names)}"


def _is_secret_ref(info: FieldInfo) -> bool:
    """Whether a field is a :data:`platforms.base.SecretRef` (``env:``/``file:``)."""

    def refs(annotation: Any) -> bool:
        if get_origin(annotation) is Annotated:
            base, *extras = get_args(annotation)
            if any(isinstance(m, BeforeValidator) and m.func is resolve_secret for m in extras):
                return True
            return refs(base)
        return any(refs(arg) for arg in get_args(annotation))

    in_metadata = any(
        isinstance(m, BeforeValidator) and m.func is resolve_secret for m in info.metadata
    )
    return in_metadata or refs(info.annotation)


def _section(s: Stage) -> tuple[type[BaseModel], dict[str, Any]]:
    cfg = s.adapter.apps[s.app]
    assert isinstance(cfg, BaseModel)
    return type(cfg), cfg.model_dump()


async def _refused(s: Stage, section: dict[str, Any], version: str = "1.0.0") -> ConfigError:
    error, seen = await _config_error(s, s.adapter.settings, {s.app: section}, version, None)
    assert error is not None, f"{section} was accepted: {seen}"
    return error


async def test_bad_app_sections_are_named(stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    s = stage
    model, good = _section(s)
    error = await _refused(s, {**good, "no_such_setting": 1})
    assert "no_such_setting" in str(error)
    for name, info in model.model_fields.items():
        if info.is_required():
            error = await _refused(s, {k: v for k, v in good.items() if k != name})
            assert name in str(error), f"missing {name}: {error}"
    secrets = [n for n, info in model.model_fields.items() if _is_secret_ref(info)]
    assert secrets, "app sections carry secrets as env:/file: references"
    monkeypatch.delenv("MINISHIP_NO_SUCH_VARIABLE", raising=False)
    for name in secrets:
        error = await _refused(s, {**good, name: "a-literal-secret"})
        assert name in str(error) and "env:" in str(error), error
        error = await _refused(s, {**good, name: "env:MINISHIP_NO_SUCH_VARIABLE"})
        assert name in str(error) and "MINISHIP_NO_SUCH_VARIABLE" in str(error), error


async def test_app_credentials_are_needed(stage: Stage) -> None:
    """Without one of its secrets an app works or is refused naming it; without any, refused."""
    s = stage
    model, good = _section(s)
    given = [
        n
        for n, info in model.model_fields.items()
        if _is_secret_ref(info) and isinstance(good.get(n), SecretStr)
    ]
    assert given, "the emulator provisioned the app's secrets"
    for i, name in enumerate(given):
        error, seen = await _config_error(
            s, s.adapter.settings, {s.app: {**good, name: None}}, f"1.{i}.0", None
        )
        assert error is None or name in str(error), f"without {name}: {error} ({seen})"
    error = await _refused(s, {**good, **dict.fromkeys(given)}, "2.0.0")
    assert any(name in str(error) for name in given), error


@each(APP_OPS)
async def test_unknown_app_is_a_config_error(stage: Stage, op: Op) -> None:
    s = stage
    await _warm(s)
    mark = s.watch.mark()
    ghost = dataclasses.replace(s.world, app="nope")
    ghost_stage = dataclasses.replace(s, world=ghost)
    try:
        result = await op.run(ghost_stage, {"ref": "1", "template": UNKNOWN_ID})
    except ConfigError as exc:
        assert f"[apps.nope.{s.name}]" in str(exc), exc
    except Unsupported as exc:
        assert op.optional, exc
    else:
        pytest.fail(f"{op} for an unknown app gave {result!r}")
    assert s.watch.since(mark) == Counter(), f"{op} sent requests for an unknown app"


# =========================================================================== tokens and faults


@each(OPS)
async def test_token_expiry_mid_flow(stage: Stage, op: Op) -> None:
    """Every token issued so far dies just before the operation: it renews and carries on."""
    s = stage
    ctx = await prepared_or_skip(s, op)
    s.emulator.inject("*", "expired_token")
    try:
        result = await op.run(s, ctx)
    except Unsupported:
        pytest.skip(f"{s.name} does not offer {op}")
    await op.check(s, ctx, result)


READ_FAULTS = ("busy", "timeout", "unavailable", "rate_limit", "malformed", "unsigned")
CHANGE_FAULTS = READ_FAULTS


def _parses(body: bytes | None) -> bool:
    """Whether an answer is complete (JSON or XML) rather than cut short."""
    if body is None:
        return False
    try:
        json.loads(body)
    except ValueError:
        try:
            ET.fromstring(body)  # noqa: S314 - our own emulator's answer
        except ET.ParseError:
            return False
    return True


@each(READS)
@pytest.mark.parametrize("fault", READ_FAULTS)
async def test_fault_on_a_read(stage: Stage, op: Op, fault: str) -> None:
    """A read meets one fault: it is retried (with a back-off) or fails with a typed error —
    BadResponse for an answer whose signature is missing, on platforms that sign."""
    s = stage
    ctx = await prepared_or_skip(s, op)
    target = s.api(op.api or "") or "*"
    mark, waited = s.watch.mark(), len(s.sleeps)
    s.emulator.inject(target, fault)
    result = await outcome(s, op, ctx)
    hit = s.watch.faulted(mark)
    if not hit:
        assert s.watch.since(mark) == Counter(), f"the fault on {target!r} was never met"
        pytest.skip(f"{op} makes no request on {s.name}")
    answer = s.recorder.answers[hit[0]]
    if fault in ("busy", "timeout", "unavailable"):
        if not op.retried and isinstance(result, PlatformUnavailable):
            assert not isinstance(result, OutcomeUnknown), result  # the platform can be asked
            return
        assert not isinstance(result, PlatformError), f"{fault} on {op}: {result!r}"
        assert len(s.sleeps) > waited, "retried without backing off"
    elif fault == "rate_limit":
        if isinstance(result, PlatformError):
            assert isinstance(result, QuotaExceeded), f"rate limit on {op}: {result!r}"
            assert result.code and result.explanation
            return
    elif fault == "unsigned" and _parses(answer):  # a whole answer, only its signature gone
        assert isinstance(result, BadResponse), (
            f"{op} took a whole answer without its signature ('unsigned' fault) as {result!r}; "
            "a platform that signs must refuse it (unless its emulator does not implement "
            f"the fault yet: {answer!r})"
        )
        return
    elif isinstance(result, PlatformError):  # malformed (or unsigned = malformed)
        assert isinstance(result, BadResponse), f"{fault} answer to {op} gave {result!r}"
        return
    await op.check(s, ctx, result)


def _change_cases() -> list[Any]:
    """(platform, operation) for every change whose API the platform's emulator names."""
    cases = []
    for name in platforms.names():
        named = platforms.emulator_class(name).OPERATIONS
        for op in OPS:
            if op.change and op.api in named:
                cases.append(pytest.param(name, op, id=f"{name}-{op}"))
    return cases


@pytest.mark.parametrize(("stage", "op"), _change_cases(), indirect=["stage"])
@pytest.mark.parametrize("fault", CHANGE_FAULTS)
async def test_fault_on_a_change(stage: Stage, op: Op, fault: str) -> None:
    """A change meets one fault on its request: it was sent exactly once, never again, and
    what the adapter reports is what the platform shows afterwards. A fault that leaves the
    request undone (busy, 5xx, rate limit) is a typed error; a lost or unusable answer
    (timeout, malformed, unsigned) is checked with the platform."""
    s = stage
    ctx = await prepared_or_skip(s, op)
    api = s.api(op.api or "")
    assert api is not None
    mark = s.watch.mark()
    s.emulator.inject(api, fault)
    result = await outcome(s, op, ctx)
    assert s.watch.faulted(mark), f"the {fault} fault on {api} was never met"
    assert s.watch.since(mark)[api] == 1, f"{op} sent {api} {s.watch.since(mark)[api]} times"
    shown = await op.shows(s, ctx) if op.shows is not None else None
    if isinstance(result, PlatformError):
        assert not isinstance(result, OutcomeUnknown), (
            f"the platform could have been asked: {result}"
        )
        assert shown in (False, None), f"{op} reported {result!r} but the change happened"
        if fault in ("busy", "unavailable"):
            assert isinstance(result, PlatformUnavailable), f"{fault} on {op} gave {result!r}"
        elif fault == "rate_limit":
            assert isinstance(result, QuotaExceeded), f"rate limit on {op} gave {result!r}"
        else:  # the answer was lost or unusable: the platform decides what is reported
            assert fault != "timeout", f"{op} was carried out, then timed out: {result!r}"
            assert isinstance(result, PlatformUnavailable | BadResponse), result
        assert result.explanation
        again = await op.run(s, ctx)  # nothing happened: trying again works
        await op.check(s, ctx, again)
    else:
        assert fault not in ("busy", "unavailable", "rate_limit"), (
            f"{op} reported success although the platform refused ({fault})"
        )
        assert shown in (True, None), f"{op} reported success but the platform shows no change"
        await op.check(s, ctx, result)


async def test_backoff_delays_grow_and_retries_are_bounded(stage: Stage) -> None:
    s = stage
    a = s.adapter
    a.settings = a.settings.model_copy(update={"max_retries": 3})
    ref = await submitted(s)
    api = s.api("status")
    assert api is not None
    s.emulator.inject(api, "busy", times=3)
    del s.sleeps[:]
    assert await state_of(s, "1.0.0", ref) is ReviewState.IN_REVIEW
    assert len(s.sleeps) == 3 and s.sleeps == sorted(set(s.sleeps)), s.sleeps
    assert s.sleeps[0] > 0

    del s.sleeps[:]
    mark = s.watch.mark()
    s.emulator.inject(api, "unavailable", times=10)
    with pytest.raises(PlatformUnavailable) as err:
        await a.review_status(s.app, "1.0.0", ref)
    assert "503" in err.value.code or "503" in str(err.value)
    assert s.watch.since(mark)[api] == 4, "three retries after the first attempt"
    assert len(s.sleeps) == 3 and s.sleeps == sorted(set(s.sleeps)), s.sleeps


async def test_busy_submit_is_reported_not_repeated(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    world.emulator.inject(world.emulator.OPERATIONS["submit"], "busy")
    with pytest.raises(PlatformUnavailable) as err:
        await a.submit(app, "1.0.0", "notes")
    assert err.value.explanation
    # nothing was submitted: a real submit now works
    sub = await a.submit(app, "1.0.0", "notes")
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW


async def test_http_503_is_unavailable(world: World) -> None:
    a, app = world.adapter, world.app
    world.emulator.inject("*", "unavailable", times=10)
    with pytest.raises(PlatformUnavailable):
        await a.upload(app, "1.0.0", "notes")


async def test_lost_publish_answer_is_checked_not_retried(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    sub = await a.submit(app, "1.0.0", "notes")
    world.decide_reviews()
    # the publish happens on the platform, but its answer never arrives
    world.emulator.inject(world.emulator.OPERATIONS["publish"], "timeout")
    await a.publish(app, "1.0.0", sub.ref)
    assert (await a.overview(app)).live_version == "1.0.0"


# =========================================================================== secrets


def secret_values(world: World) -> set[str]:
    """Every secret the adapter holds: the SecretStr values of its settings and app configs,
    and every credential and token the emulator issued (which the adapter may have
    obtained at run time)."""

    def in_model(model: BaseModel) -> set[str]:
        found: set[str] = set()
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                found.add(value.get_secret_value())
        return found

    values = in_model(world.adapter.settings)
    for cfg in world.adapter.apps.values():
        values |= in_model(cfg)
    return values | world.emulator.issued_secrets()


def assert_no_secret_values(world: World, log: list[Exchange]) -> None:
    text = json.dumps([dataclasses.asdict(x) for x in log], ensure_ascii=False, default=str)
    secrets = secret_values(world)
    assert len(secrets) >= 3
    for secret in secrets:
        escaped = json.dumps(secret, ensure_ascii=False)[1:-1]  # as it would stand in JSON
        assert secret not in text and escaped not in text, f"a secret leaked into {text}"


async def test_exchanges_are_recorded_without_secrets(world: World) -> None:
    a, app = world.adapter, world.app
    a.apps[app] = a.apps[app].model_copy(update={"review_notes": "Reviewers need no login."})
    with recording() as log:
        await a.upload(app, "1.0.0", "notes")
        world.emulator.inject("*", "expired_token")  # tokens are renewed on the way
        sub = await a.submit(app, "1.0.0", "notes")
        world.decide_reviews()
        await a.review_status(app, "1.0.0", sub.ref)
        await a.publish(app, "1.0.0", sub.ref)
        await a.overview(app)
    assert log and all(x.platform == world.name for x in log)
    assert_no_secret_values(world, log)


async def test_refused_calls_are_recorded_without_secrets(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes")
    await a.upload(app, "1.0.1", "notes")
    with recording() as log:
        world.emulator.inject("*", "expired_token")
        with pytest.raises(AlreadyInReview):
            await a.submit(app, "1.0.1", "notes")
        with pytest.raises(InvalidState):
            await a.publish(app, "1.0.0", "not-the-ref")
    assert log
    assert_no_secret_values(world, log)
