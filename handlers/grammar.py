"""The command language, shared by Slack (``/ship …``), the console and scripts.

    upload <app> [platform] <version> [notes…]

A platform word (``wechat``, ``alipay``) narrows a command to that platform; leaving it
out means every platform the app is on. A leading ``/ship`` is accepted and ignored.
Parsing never fails with anything but :class:`UsageError`, whose message says what was
wrong and carries the usage of the command.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["COMMANDS", "Command", "CommandSpec", "UsageError", "help_text", "parse"]

MAX_INPUT = 4000  # Slack's slash-command text is shorter than this
MAX_NOTES = 1000

MAX_VERSION = 64  # WeChat's user_version limit, and the column's width
VERSION = re.compile(r"^[vV]?\d[0-9A-Za-z._+-]*$")
APP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    details: str = ""


COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        CommandSpec("help", "help [command]", "list the commands, or explain one"),
        CommandSpec("apps", "apps", "the configured apps and their id on each platform"),
        CommandSpec(
            "upload",
            "upload <app> [platform] <version> [template <id>] [notes…]",
            "upload a version (from a template, or your code via the platform's CLI)",
            "The notes are kept with the release and go to the reviewers on submit. "
            "`template <id>` commits that template instead of the app's configured one "
            "(`templates` lists them). The trial version's QR code follows the reply.",
        ),
        CommandSpec(
            "qr",
            "qr <app> [platform] [version]",
            "the trial version's QR code (default: the latest upload)",
        ),
        CommandSpec(
            "submit",
            "submit <app> [platform] <version> [--expedite]",
            "submit an uploaded version for review",
            "A rejected or withdrawn version can be submitted again. `--expedite` asks for "
            "a faster review where the platform takes that at submission (Alipay); on "
            "WeChat use `expedite` after submitting. WeChat counts submissions against "
            "a monthly quota (`quota`).",
        ),
        CommandSpec(
            "expedite",
            "expedite <app> [platform] <version>",
            "ask for a faster review of a version in review (uses the platform's quota)",
        ),
        CommandSpec(
            "quota",
            "quota <app> [platform]",
            "what is left of the platforms' limits: submissions, expedites, withdrawals",
        ),
        CommandSpec(
            "status",
            "status [app] [platform]",
            "ask the platforms now and show where each release stands",
        ),
        CommandSpec(
            "publish",
            "publish <app> [platform] <version> [at <time> | in <duration>]",
            "publish an approved version, now or at a given time",
            "Without a platform, every platform must be approved first; otherwise nothing "
            "is published and the reply says which platform is not ready.\n"
            "Timed: `at 2026-12-01 10:00`, `at 10:00` (the next one), `at tomorrow 9:30`, "
            "`in 2h` / `in 90m` / `in 1d 4h`, in the app's time zone. At that time miniship "
            "checks again that the version is approved and nothing newer is live, then "
            "publishes; a reminder goes to the release's thread beforehand.",
        ),
        CommandSpec(
            "withdraw",
            "withdraw <app> [platform] <version>",
            "pull a version out of review (Alipay: also an approved one, back to development)",
            "Platforms limit withdrawals (WeChat: 5 a day, 10 a month per mini program); "
            "what is left is shown, and a withdrawal is refused when none is.",
        ),
        CommandSpec(
            "gray",
            "gray <app> <platform> [version] <percent> | gray <app> <platform> stop",
            "release the approved version to a share of users, grow the share, or stop",
            "WeChat takes any whole percentage from 1 to 100 that grows; Alipay p10, p30, "
            "p50. `publish` then releases it to everyone; `stop` takes it back.",
        ),
        CommandSpec(
            "rollback",
            "rollback <app> <platform> [to <version>]",
            "put the previous live version (or the one named) back in place",
            "`status <app> <platform>` lists the versions the platform keeps. WeChat can go "
            "back to any of its last five releases; Alipay to the previous one only.",
        ),
        CommandSpec(
            "offline",
            "offline <app> <platform> [version]",
            "take the live version off the shelves (Alipay)",
        ),
        CommandSpec(
            "templates",
            "templates [platform]",
            "the third-party platform's template library and draft box",
        ),
        CommandSpec(
            "template",
            "template add <draft_id> | template delete <template_id>",
            "turn a draft into a template, or delete a template",
        ),
        CommandSpec(
            "connect",
            "connect <app> <platform>",
            "the link a mini program's admin opens to authorize miniship's platform",
        ),
        CommandSpec("history", "history <app>", "who did what, when, and what the platform said"),
        CommandSpec(
            "schedule",
            "schedule [app] | schedule cancel <id>",
            "list pending timed releases, or cancel one",
        ),
    )
}


class UsageError(Exception):
    """The command could not be understood; ``usage`` shows how to write it."""

    def __init__(self, message: str, command: str | None = None) -> None:
        self.message = message
        self.command = command
        self.usage = COMMANDS[command].usage if command in COMMANDS else ""
        super().__init__(message)


@dataclass(frozen=True)
class Command:
    name: str
    app: str | None = None
    platforms: tuple[str, ...] = ()  # empty: every platform the app is on
    version: str | None = None
    notes: str = ""
    topic: str | None = None  # for help
    when: str | None = None  # publish: "at …" / "in …", as typed
    action_id: int | None = None  # schedule cancel: which timed action
    template: str | None = None  # upload: the template to commit
    expedite: bool = False  # submit --expedite
    share: int | None = None  # gray: the percentage (None with stop)
    stop: bool = False  # gray … stop
    to: str | None = None  # rollback: the version to go back to
    verb: str | None = None  # template: add | delete
    item: str | None = None  # template: the draft or template id


def parse(text: str, platforms: Sequence[str]) -> Command:
    """Parse one command line.

    Args:
        text: what the person typed, with or without a leading ``/ship``.
        platforms: the platform names that may be typed (from the registry).
    """
    if len(text) > MAX_INPUT:
        raise UsageError(f"that is {len(text)} characters; a command is at most {MAX_INPUT}")
    words = [(m.group(), m.end()) for m in re.finditer(r"\S+", text)]
    if words and words[0][0].lower() == "/ship":
        words = words[1:]
    if not words:
        raise UsageError("type a command; `help` lists them")
    name = words[0][0].lower()
    args = [w for w, _ in words[1:]]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else " `help` lists the commands."
        raise UsageError(f"unknown command `{_clip(name)}`.{hint}")

    if name == "help":
        if len(args) > 1:
            raise UsageError("help takes at most one command name", name)
        topic = args[0].lower() if args else None
        if topic is not None and topic not in COMMANDS:
            raise UsageError(f"there is no command `{_clip(topic)}`", name)
        return Command(name, topic=topic)
    if name == "apps":
        _no_more(args, 0, name)
        return Command(name)
    if name == "status":
        return _status(args, platforms)
    if name == "history":
        if not args:
            raise UsageError("which app? e.g. `history demo`", name)
        _no_more(args, 1, name)
        return Command(name, app=_app(args[0], name))
    if name == "schedule":
        return _schedule(args)
    if name == "templates":
        _no_more(args, 1, name)
        return Command(name, platforms=(_platform(args[0], platforms, name),) if args else ())
    if name == "template":
        return _template(args)
    if name in ("gray", "rollback", "offline", "connect", "quota", "qr"):
        return _on_platform(name, args, platforms)

    # upload / submit / publish / withdraw: <app> [platform] <version> …
    if not args:
        raise UsageError("which app and version?", name)
    app = _app(args[0], name)
    i = 1
    chosen: tuple[str, ...] = ()
    if i < len(args) and args[i].lower() in platforms:
        chosen = (args[i].lower(),)
        i += 1
    if i >= len(args):
        raise UsageError("which version?", name)
    version = _version(args[i], platforms, name)
    if name == "upload":
        template = None
        rest = i + 1  # args[rest] is the first word after the version (words[rest + 1])
        if rest + 1 < len(args) and args[rest].lower() == "template":
            template = _number(args[rest + 1], "template id", name)
            rest += 2
        notes = text[words[rest][1] :].strip()  # everything after, as typed
        if len(notes) > MAX_NOTES:
            raise UsageError(f"notes are at most {MAX_NOTES} characters", name)
        return Command(
            name, app=app, platforms=chosen, version=version, notes=notes, template=template
        )
    if name == "submit" and i + 1 < len(args) and args[i + 1].lower() == "--expedite":
        _no_more(args, i + 2, name)
        return Command(name, app=app, platforms=chosen, version=version, expedite=True)
    if name == "publish" and i + 1 < len(args) and args[i + 1].lower() in ("at", "in"):
        when = text[words[i + 1][1] :].strip()  # "at …" / "in …", read by handlers.when
        return Command(name, app=app, platforms=chosen, version=version, when=when)
    if name == "publish" and i + 1 < len(args):
        raise UsageError(
            f"unexpected `{_clip(args[i + 1])}`; to publish later, add `at <time>` or "
            "`in <duration>`",
            name,
        )
    _no_more(args, i + 1, name)
    return Command(name, app=app, platforms=chosen, version=version)


def _status(args: list[str], platforms: Sequence[str]) -> Command:
    app: str | None = None
    chosen: tuple[str, ...] = ()
    rest = list(args)
    if rest and rest[0].lower() not in platforms:
        app = _app(rest.pop(0), "status")
    if rest:
        if rest[0].lower() not in platforms:
            raise UsageError(
                f"`{_clip(rest[0])}` is not a platform ({', '.join(platforms)})", "status"
            )
        chosen = (rest.pop(0).lower(),)
    _no_more(rest, 0, "status")
    return Command("status", app=app, platforms=chosen)


def _schedule(args: list[str]) -> Command:
    if args and args[0].lower() == "cancel":
        if len(args) < 2:
            raise UsageError("which one? `schedule` lists them with their ids", "schedule")
        _no_more(args, 2, "schedule")
        number = args[1].removeprefix("#")
        if not re.fullmatch(r"[0-9]{1,9}", number):
            raise UsageError(f"`{_clip(args[1])}` is not a timed release id", "schedule")
        return Command("schedule", action_id=int(number))
    _no_more(args, 1, "schedule")
    return Command("schedule", app=_app(args[0], "schedule") if args else None)


def _on_platform(name: str, args: list[str], platforms: Sequence[str]) -> Command:
    """``<app> <platform> …`` commands (the platform may be left out where it says so)."""
    if not args:
        raise UsageError("which app?", name)
    app = _app(args[0], name)
    rest = args[1:]
    chosen: tuple[str, ...] = ()
    if rest and rest[0].lower() in platforms:
        chosen = (rest.pop(0).lower(),)
    elif name in ("gray", "rollback", "offline", "connect"):
        hint = f"which platform? e.g. `{name} {app} {platforms[0]} …`" if platforms else ""
        raise UsageError(hint or "which platform?", name)
    if name in ("quota", "connect"):
        _no_more(rest, 0, name)
        return Command(name, app=app, platforms=chosen)
    if name in ("qr", "offline"):
        _no_more(rest, 1, name)
        version = _version(rest[0], platforms, name) if rest else None
        return Command(name, app=app, platforms=chosen, version=version)
    if name == "rollback":
        if not rest:
            return Command(name, app=app, platforms=chosen)
        if rest[0].lower() != "to" or len(rest) < 2:
            raise UsageError("write `to <version>`, or nothing for the previous version", name)
        _no_more(rest, 2, name)
        return Command(name, app=app, platforms=chosen, to=_version(rest[1], platforms, name))
    # gray [version] <percent> | stop
    version = None
    if len(rest) == 2:
        version = _version(rest.pop(0), platforms, name)
    if len(rest) != 1:
        raise UsageError("give a percentage (e.g. 10, p30) or `stop`", name)
    word = rest[0].lower()
    if word == "stop":
        return Command(name, app=app, platforms=chosen, version=version, stop=True)
    number = word.removeprefix("p").removesuffix("%")
    if not re.fullmatch(r"[0-9]{1,3}", number) or not 1 <= int(number) <= 100:
        raise UsageError(f"`{_clip(rest[0])}` is not a percentage from 1 to 100", name)
    return Command(name, app=app, platforms=chosen, version=version, share=int(number))


def _template(args: list[str]) -> Command:
    if not args or args[0].lower() not in ("add", "delete"):
        raise UsageError("`template add <draft_id>` or `template delete <template_id>`", "template")
    verb = args[0].lower()
    if len(args) < 2:
        what = "draft" if verb == "add" else "template"
        raise UsageError(f"which {what}? `templates` lists them with their ids", "template")
    _no_more(args, 2, "template")
    what = "draft id" if verb == "add" else "template id"
    return Command("template", verb=verb, item=_number(args[1], what, "template"))


def _platform(word: str, platforms: Sequence[str], command: str) -> str:
    if word.lower() not in platforms:
        raise UsageError(f"`{_clip(word)}` is not a platform ({', '.join(platforms)})", command)
    return word.lower()


def _number(word: str, what: str, command: str) -> str:
    number = word.removeprefix("#")
    if not re.fullmatch(r"[0-9]{1,18}", number):
        raise UsageError(f"`{_clip(word)}` is not a {what} (a number)", command)
    return number


def _app(word: str, command: str) -> str:
    if not APP.match(word):
        raise UsageError(f"`{_clip(word)}` is not an app name", command)
    return word


def _version(word: str, platforms: Sequence[str], command: str) -> str:
    if VERSION.match(word):
        if len(word) > MAX_VERSION:
            raise UsageError(f"a version is at most {MAX_VERSION} characters", command)
        return word
    close = difflib.get_close_matches(word.lower(), platforms, n=1)
    if close:
        raise UsageError(f"`{_clip(word)}` is not a platform; did you mean `{close[0]}`?", command)
    raise UsageError(
        f"`{_clip(word)}` is neither a platform ({', '.join(platforms)}) nor a version "
        "(versions start with a digit, like 1.2.0)",
        command,
    )


def _no_more(args: list[str], allowed: int, command: str) -> None:
    if len(args) > allowed:
        raise UsageError(f"unexpected `{_clip(args[allowed])}`", command)


def _clip(word: str, limit: int = 40) -> str:
    word = word.replace("`", "'")
    return word if len(word) <= limit else word[:limit] + "…"


def help_text(topic: str | None = None) -> str:
    if topic is not None:
        spec = COMMANDS[topic]
        text = f"`{spec.usage}`\n{spec.summary}."
        if spec.details:
            text += f"\n{spec.details}"
        return text
    width = max(len(s.usage) for s in COMMANDS.values())
    lines = [f"  {s.usage.ljust(width)}  {s.summary}" for s in COMMANDS.values()]
    return (
        "Commands (in Slack, type them after /ship):\n"
        + "\n".join(lines)
        + "\nLeave out the platform to act on every platform the app is on."
    )
