"""Every ``railyard`` process starts through ``streams.cli.main``: what it imports at start-up
every process pays for, in memory and start time, for as long as it runs.

The embedded engine (chdb, ~200 MiB) belongs in the process that owns the store, the web
stack (FastAPI, uvicorn) in ``railyard api``. Measured when they leaked in: importing the
command took 264 MiB and 0.67 s instead of 45 MiB and 0.3 s, and each worker of
``python -m bench.ingest`` peaked ~200 MiB higher.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("chdb", "fastapi", "uvicorn", "starlette", "selenium", "connectors.console.router")


def loaded_after(statement: str) -> list[str]:
    probe = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return list(json.loads(done.stdout))


def test_the_command_line_loads_neither_the_engine_nor_the_web_stack() -> None:
    modules = loaded_after("import streams.cli.main")
    assert "streams.cli.main" in modules
    assert [m for m in HEAVY if m in modules] == []


def test_the_check_sees_a_heavy_import() -> None:
    assert "fastapi" in loaded_after("import connectors.console.router")
