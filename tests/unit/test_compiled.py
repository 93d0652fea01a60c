"""The compiled hot path (streams/compiled.py): used only when built for these sources,
and the same answers interpreted as compiled."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams import compiled

ROOT = Path(__file__).parents[2]

HOT_PATH_TESTS = (
    "tests/unit/test_usage_reader.py",
    "tests/unit/test_contributions_wire.py",
    "tests/unit/test_attributed_columns.py",
    "tests/unit/test_attribution.py",
    "tests/unit/test_validation.py",
    "tests/unit/test_ingest_screen.py",
    "tests/unit/test_dedup.py",
    "tests/unit/test_metering.py",
    "tests/unit/test_accumulators.py",
    "tests/unit/test_partials.py",
    "tests/unit/test_watermarks.py",
    "tests/unit/test_windows.py",
    "tests/unit/test_window_replay.py",
    "tests/unit/test_billing_book.py",
    "tests/unit/test_book_records.py",
)
"""The tests of every module of :data:`compiled.HOT_PATH`: this run checks the compiled
build (what ``deploy/setup.sh`` makes), a second run the same tests interpreted."""


def test_every_hot_path_module_has_its_tests_here() -> None:
    for name in compiled.HOT_PATH:
        leaf = name.rsplit(".", 1)[1]
        mentioned = [t for t in HOT_PATH_TESTS if leaf in (ROOT / t).read_text(encoding="utf-8")]
        assert mentioned, f"{name}: none of HOT_PATH_TESTS exercises it"


def test_the_hot_path_runs_compiled_unless_told_otherwise() -> None:
    """``deploy/setup.sh`` compiles it, so the suite checks what a deployment runs."""
    status = compiled.STATUS
    if os.environ.get(compiled.PURE_PYTHON) == "1":
        assert not status.compiled
        return
    assert status.compiled, status.describe()
    for name in compiled.HOT_PATH:
        origin = importlib.import_module(name).__file__ or ""
        assert origin.endswith(".so") and compiled.BUILD_DIR in origin, (name, origin)


def test_the_same_tests_pass_interpreted() -> None:
    env = {**os.environ, compiled.PURE_PYTHON: "1"}
    env.pop("PYTEST_XDIST_WORKER", None)
    probe = subprocess.run(
        [sys.executable, "-c", "import streams.compiled as c; print(c.STATUS.describe())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "runs as Python" in probe.stdout
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
        + list(HOT_PATH_TESTS),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout


def fake_build(root: Path) -> None:
    """A tree with one module and a build stamped for it (extensions stand in as files)."""
    (root / "streams").mkdir()
    (root / "streams" / "a.py").write_text("x = 1\n")
    build = root / compiled.BUILD_DIR
    build.mkdir()
    modules = {}
    for name in (*compiled.HOT_PATH, compiled.GROUP + "__mypyc"):
        path = name.replace(".", "/") + ".cpython-311-x86_64-linux-gnu.so"
        (build / path).parent.mkdir(parents=True, exist_ok=True)
        (build / path).write_bytes(b"")
        modules[name] = path
    stamp = compiled.stamp_for(str(root / "streams"), modules, "mypyc test")
    (build / compiled.STAMP).write_text(json.dumps(stamp))


def test_a_build_is_used_for_the_sources_it_was_compiled_from(tmp_path: Path) -> None:
    fake_build(tmp_path)
    found = compiled.find_build(str(tmp_path), {})
    assert found.compiled, found.reason
    group = compiled.GROUP + "__mypyc"
    assert set(found.modules) == {*compiled.HOT_PATH, group}
    assert found.modules["streams.wire.varint"].startswith(str(tmp_path / compiled.BUILD_DIR))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda r: (r / "streams" / "a.py").write_text("x = 2\n"), "sources changed"),
        (lambda r: (r / "streams" / "b.py").write_text(""), "sources changed"),
        (lambda r: (r / "streams" / "a.py").rename(r / "streams" / "c.py"), "sources changed"),
        (lambda r: (r / compiled.BUILD_DIR / compiled.STAMP).unlink(), "not compiled"),
        (lambda r: (r / compiled.BUILD_DIR / compiled.STAMP).write_text("{"), "unreadable"),
        (
            lambda r: next((r / compiled.BUILD_DIR).rglob("varint*.so")).unlink(),
            "incomplete",
        ),
    ],
    ids=["edited", "added", "renamed", "no stamp", "bad stamp", "missing extension"],
)
def test_a_build_that_does_not_match_the_sources_is_never_loaded(
    tmp_path: Path, change: object, reason: str
) -> None:
    fake_build(tmp_path)
    change(tmp_path)  # type: ignore[operator]
    found = compiled.find_build(str(tmp_path), {})
    assert not found.compiled and reason in found.reason, found.reason
    assert found.modules == {}


def test_another_python_or_the_switch_runs_the_source(tmp_path: Path) -> None:
    fake_build(tmp_path)
    assert not compiled.find_build(str(tmp_path), {compiled.PURE_PYTHON: "1"}).compiled
    stamp_path = tmp_path / compiled.BUILD_DIR / compiled.STAMP
    stamp = json.loads(stamp_path.read_text())
    stamp_path.write_text(json.dumps({**stamp, "python": "cpython-310"}))
    found = compiled.find_build(str(tmp_path), {})
    assert not found.compiled and "different Python" in found.reason


def test_the_finder_serves_the_builds_modules_only(tmp_path: Path) -> None:
    finder = compiled.CompiledFinder({"streams.wire.varint": str(tmp_path / "varint.so")})
    assert finder.find_spec("streams.wire.codec") is None
    spec = finder.find_spec("streams.wire.varint")
    assert spec is not None and spec.origin == str(tmp_path / "varint.so")
    assert type(spec.loader).__name__ == "ExtensionFileLoader"
