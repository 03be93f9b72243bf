"""The benchmark script runs end to end (a smoke run: 8 apps). Its figures are not
checked against their bounds here — timings do not belong in tests; `make bench` prints
them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# real processes, timed by the wall clock: one after another on one xdist worker
pytestmark = pytest.mark.xdist_group("processes")

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmarks_run_end_to_end() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--apps", "8", "--latency-ms", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: a figure over its bound
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    names = [row.split(" | ")[0] for row in rows[1:]]
    assert len(names) == 6, done.stdout
    assert any("wechatpy loop" in row for row in rows)  # the peer ran over the same emulator
    assert "timed publishes: 4 of 4 sent" in done.stdout, done.stdout
    assert "fleet publish, 4 apps" in done.stdout, done.stdout
