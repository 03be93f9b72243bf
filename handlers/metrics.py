"""miniship's own Prometheus metrics (those of platform calls are in platforms/base.py);
served by handlers/ops.py at ``/metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "COMMANDS",
    "FLEETS_RUNNING",
    "LEADER",
    "RELEASES",
    "TIMED_PENDING",
    "WATCH_ROUND",
    "command_outcome",
]

COMMANDS = Counter(
    "miniship_commands",
    "Commands run, from every way in, by command and outcome (ok, error: refused or "
    "not understood, asked: waiting for a yes).",
    ["command", "outcome"],
)
WATCH_ROUND = Histogram(
    "miniship_watch_round_seconds",
    "How long a round of the review watcher took (every watched release asked).",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
LEADER = Gauge("miniship_leader", "1 while this replica leads (runs the scheduler), else 0.")
RELEASES = Gauge(
    "miniship_releases", "Releases per platform and state, as stored.", ["platform", "state"]
)
TIMED_PENDING = Gauge("miniship_timed_releases_pending", "Timed releases planned, not yet due.")
FLEETS_RUNNING = Gauge("miniship_fleet_runs_running", "Fleet runs still running.")


def command_outcome(error: bool, asked: bool) -> str:
    return "error" if error else "asked" if asked else "ok"
