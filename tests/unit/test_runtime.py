"""Process-wide settings of the long-running processes."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(("name", "policy"), [("uvloop", "uvloop"), ("aio", "asyncio")])
def test_the_event_loop_setting_picks_the_loop_the_worker_runs(name: str, policy: str) -> None:
    """In a child process: a loop policy is process-wide, and pytest has its own loops."""
    code = (
        "import asyncio\n"
        "from streams.agents.runtime import use_event_loop\n"
        f"print(use_event_loop({name!r}))\n"
        "loop = asyncio.new_event_loop()\n"
        "print(type(loop).__module__.split('.')[0])\n"
        "print(loop.run_until_complete(asyncio.sleep(0, result='ran')))\n"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.split() == [policy, policy, "ran"]
