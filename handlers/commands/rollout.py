"""``rollout <app> <version> [platform] [plan <steps>|<name>] [every <span>] [on-regression
revert|pause]`` starts a staged rollout; ``rollout <app> [<version>] [platform] status | pause
| resume | advance | abort`` looks at it or steers it (naming the version, only the rollout
of that version: what a card's buttons send, so an old card cannot steer a newer rollout).

Over a group (``rollout @shops 1.4.0 wechat plan careful``): one fleet run starting a
rollout per app, each gated on its own figures, its card counting how many advanced,
held and halted; ``rollout @shops 1.4.0 pause | resume | abort`` steers them all (a fleet
run of the same control per app, the apps with no rollout of that version skipped).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from handlers import policy
from handlers.commands._kit import Command, Context, Question, Reply
from handlers.commands._words import AppArgs, Scope, Words, clip
from handlers.fleet import current_run
from handlers.releases import CommandRefused
from handlers.rollouts.gate import gate_for
from handlers.rollouts.plan import PlanError, read_every, read_steps, span_words
from storage import RolloutState

CONTROLS = ("status", "pause", "resume", "advance", "abort")
OVER_GROUPS = ("pause", "resume", "abort")  # the controls a fleet's rollouts take at once
_OPTIONS = ("plan", "every", "on-regression")
_NAMED = re.compile(r"[a-z][a-z0-9_-]{0,31}")  # a [rollouts.<name>] plan
_STEP = re.compile(r"p\d+|online|full|all")  # … unless it reads as a step


@dataclass(frozen=True, kw_only=True)
class RolloutArgs(AppArgs):
    version: str | None = None  # starting, or the version a control is meant for
    control: str = ""  # status, pause, resume, advance, abort ("" when starting)
    steps: tuple[int, ...] | None = None
    named: str | None = None  # a [rollouts.<name>] plan
    every: timedelta | None = None
    on_regression: str | None = None

    def scope(self) -> Scope:
        return Scope(self.app, self.version, self.platform)

    def acts_now(self) -> bool:
        """Starting, resuming or advancing puts the new version before more users (a
        freeze stops it); pausing, aborting and looking do not."""
        return self.control in ("", "resume", "advance")

    def second_person(self) -> bool:
        return self.control in ("", "advance")

    def over_group(self) -> str | None:
        if self.control == "status":
            return (
                "A fleet's rollouts are shown by `fleet <id>` (how many advanced, held, "
                "halted, and which apps to look at); `rollout <app> status` shows one app's."
            )
        if self.control == "advance":
            return (
                "Advance one app at a time (`rollout <app> advance`): it skips the health "
                "gate. Over a group: `rollout @tag <version> pause | resume | abort`."
            )
        if self.control and self.version is None:
            return (
                f"Name the version the rollouts are of: `rollout @tag <version> "
                f"{self.control}` (only the rollouts of that version are touched)."
            )
        return None


def read(words: Words) -> RolloutArgs:
    app = words.app()
    chosen = words.platform()
    control = words.take_if(*CONTROLS)
    if control is not None:
        chosen += tuple(p for p in words.platform() if p not in chosen)
        words.end()
        _one_platform(words, app, None, chosen)
        return RolloutArgs(app=app, platforms=chosen, control=control)
    version = words.version("which version, or status / pause / resume / advance / abort?")
    chosen += tuple(p for p in words.platform() if p not in chosen)
    control = words.take_if(*CONTROLS)
    if control is not None:  # the control of the rollout of that version only
        chosen += tuple(p for p in words.platform() if p not in chosen)
        words.end()
        _one_platform(words, app, version, chosen)
        return RolloutArgs(app=app, platforms=chosen, version=version, control=control)
    _one_platform(words, app, version, chosen)
    steps: tuple[int, ...] | None = None
    named: str | None = None
    every: timedelta | None = None
    on_regression: str | None = None
    seen: set[str] = set()
    while words.more():
        option = words.take_if(*_OPTIONS)
        if option is None:
            words.fail(f"unexpected `{clip(words.take())}`; options: plan, every, on-regression")
        if option in seen:
            words.fail(f"`{option}` is given twice")
        seen.add(option)
        if not words.more():
            words.fail(f"`{option}` needs a value")
        value = words.take()
        try:
            if (
                option == "plan"
                and _NAMED.fullmatch(value.lower())
                and not _STEP.fullmatch(value.lower())
            ):
                named = value.lower()  # a named plan of miniship.toml
            elif option == "plan":
                steps = read_steps(value)
            elif option == "every":
                every = read_every(value)
            elif value.lower() in ("revert", "pause"):
                on_regression = value.lower()
            else:
                words.fail("on-regression is `revert` (take the staged release back) or `pause`")
        except PlanError as exc:
            words.fail(str(exc))
    return RolloutArgs(
        app=app,
        platforms=chosen,
        version=version,
        steps=steps,
        named=named,
        every=every,
        on_regression=on_regression,
    )


def _one_platform(words: Words, app: str, version: str | None, chosen: tuple[str, ...]) -> None:
    """A rollout is of one platform: a line naming several is refused, not cut short."""
    if len(chosen) < 2:
        return
    line = f"rollout {app}{' ' + version if version else ''}"
    each = " and ".join(f"`{line} {p} …`" for p in chosen)
    words.fail(
        f"a rollout is on one platform (each rolls out on its own, gated on its own "
        f"figures): name one — {each}, one command each"
    )


def _platform(context: Context, args: RolloutArgs) -> str | None:
    """The platform the line means: named, the app's only one, or (controls) any."""
    if args.platforms:
        return args.platforms[0]
    app = context.service.app(args.app)
    names = context.service.platforms_for(app, [])
    if len(names) == 1 or args.control:
        return names[0] if len(names) == 1 else None
    return None


async def run(context: Context, args: RolloutArgs) -> Reply:
    app = context.service.app(args.app)
    engine = context.rollouts
    platform = _platform(context, args)
    if args.control == "status":
        return Reply(await engine.status(app.key, platform))
    refusal = await context.require(app, "publish", "rollout", args.version, platform)
    if refusal is not None:
        return refusal
    if args.control:
        if context.in_fleet:  # an app of `rollout @tag <version> pause`: nothing to do?
            skipped = await _nothing_to_do(context, args, platform)
            if skipped is not None:
                return skipped
        # the engine decides whether the override is needed, on the state it acts on; over
        # a group, going on past a halt takes the line's own --override (never implied)
        asked = not context.in_fleet or context.override is not None
        override = (
            args.control in ("advance", "resume") and asked and await context.may(app, "override")
        )
        rollout, text = await engine.control(
            context.actor,
            app.key,
            platform,
            args.control,
            override=override,
            version=args.version,
        )
        return Reply(text, about=(app.key, rollout.version), outcome="ok")
    if platform is None:
        return Reply(
            f"{app.key} is on several platforms; name one: `rollout {app.key} {args.version} "
            "wechat …` (each platform rolls out on its own)",
            error=True,
        )
    assert args.version is not None
    if context.in_fleet:  # an app of `rollout @tag <version> …` rolling it out already
        under_way = await _under_way(context, args, platform)
        if under_way is not None:
            return under_way
    plan = engine.plan(
        app,
        platform,
        steps=args.steps,
        every=args.every,
        name=args.named,
        on_regression=args.on_regression,
    )
    started = await engine.start(
        context.actor,
        app.key,
        args.version,
        platform,
        plan,
        context.channel,
        fleet_id=current_run() if context.in_fleet else None,
    )
    reply = Reply.of(started.result, started.text)
    return (
        reply
        if started.rollout is not None
        else Reply(reply.text, error=True, about=reply.about, outcome=reply.outcome or "failed")
    )


async def _under_way(context: Context, args: RolloutArgs, platform: str) -> Reply | None:
    """In a fleet's start, an app whose rollout of the version is under way already is
    skipped (said why), not failed (a retry would not start it either)."""
    try:
        rollout = await context.rollouts.current(args.app, platform, args.version)
    except CommandRefused:
        return None  # none of that version under way: the start says what else stops it
    return Reply(
        f"rollout #{rollout.id} of {args.version} is {policy.rollout_words(rollout.state)} "
        "already; not started again",
        outcome="skipped",
    )


async def _nothing_to_do(context: Context, args: RolloutArgs, platform: str | None) -> Reply | None:
    """In a fleet's control, an app whose rollout of the version is not under way, or
    cannot take the control in its state, is skipped (said why), not failed; so is a
    halted one a resume would put back before users, unless the line overrides."""
    try:
        rollout = await context.rollouts.current(args.app, platform, args.version)
    except CommandRefused as exc:
        return Reply(str(exc), outcome="skipped")
    if args.control == "resume" and rollout.state == RolloutState.HALTED and not context.override:
        return Reply(
            f"rollout #{rollout.id} was halted on a regression: not resumed over the group "
            f"(`rollout {args.app} resume` resumes it alone; `--override <why>` at the end of "
            "the group's line resumes the halted ones too)",
            outcome="skipped",
        )
    if policy.rollout_allows(args.control, rollout.state):
        return None
    if policy.rollout_busy(rollout.state):  # its step is being taken: tried again shortly
        return Reply(
            f"rollout #{rollout.id} is taking a step; the {args.control} is tried again "
            "in a moment",
            error=True,
            transient=True,
        )
    return Reply(
        f"rollout #{rollout.id} is {policy.rollout_words(rollout.state)}; it cannot "
        f"{args.control} now",
        outcome="skipped",
    )


async def confirm(context: Context, args: RolloutArgs) -> Question | None:
    if args.control in ("status", "pause"):
        return None
    app = context.service.app(args.app)
    platform = _platform(context, args)
    if args.control == "resume":
        rollout = await context.rollouts.current(app.key, platform, args.version)
        if rollout.state != RolloutState.HALTED:
            return None
        return Question(
            f"Resume rollout #{rollout.id} of {app.key} {rollout.version}, halted on a "
            "regression? Its share goes out again if it was taken back (the override role "
            "is needed)."
        )
    if args.control == "abort":
        return Question(
            f"Abort the staged rollout of {app.key}? Users who have the new version go back "
            "to the live one."
        )
    if args.control == "advance":
        return Question(
            f"Advance the rollout of {app.key} to its next step now, without the health gate?"
        )
    if platform is None:
        return None  # refused when run
    plan = context.rollouts.plan(
        app,
        platform,
        steps=args.steps,
        every=args.every,
        name=args.named,
        on_regression=args.on_regression,
    )
    later = " → ".join(f"{share}%" for share in plan.steps[1:])
    gated = gate_for(context.service.adapters[platform]).has_data
    then = (
        f", then {later}, a step every {span_words(plan.every)}"
        + (" after the health gate" if gated else " on time only (no health figures)")
        if later
        else ""
    )
    return Question(
        f"Roll {app.key} {args.version} out on {context.where(app.key, (platform,))}: "
        f"{plan.steps[0]}% now{then}?"
    )


COMMAND = Command(
    name="rollout",
    usage="rollout <app> <version> [platform] [plan <steps>|<name>] [every <span>] "
    "[on-regression revert|pause] | rollout <app> [<version>] [platform] "
    "status|pause|resume|advance|abort",
    summary="release in steps, each after a health gate on the platform's own error data",
    details="The first step goes out at once; each later step waits `every` (default 1d), "
    "then WeChat's JS error reports of the new version are compared with the one it "
    "replaces: healthy → the next step; a regression → the staged release is taken back "
    "(or paused) with the evidence in the thread; no figures → the step is held and tried "
    "again. Alipay reports no such figures: its steps (p10, p30, p50, online) go on time "
    "only. Advancing past a halt needs the override role. Named plans: [rollouts.<name>] "
    "in miniship.toml. A control naming the version acts only on the rollout of that "
    "version. `@tag` or `all` in the app's place starts one fleet run: a rollout per app, "
    "each gated on its own figures, the run's card counting how many advanced, held and "
    "halted; `rollout @tag <version> pause|resume|abort` steers them all.",
    examples=(
        "rollout demo 1.4.0 wechat plan 5,20,50,100 every 1d",
        "rollout demo 1.4.0 alipay plan p10,p30,p50,online every 12h",
        "rollout demo 1.4.0 wechat plan careful",
        "rollout demo status",
        "rollout demo advance",
        "rollout @shops 1.4.0 wechat plan careful",
        "rollout @shops 1.4.0 pause",
    ),
    role="view",
    rank=115,
    guarded=True,
    two_person=True,
    fleet=True,
    read=read,
    run=run,
    confirm=confirm,
)
