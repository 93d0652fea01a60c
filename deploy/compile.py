"""Compile Railyard's hot path with mypyc into .compiled/ (what and why: streams/compiled.py).

    python deploy/compile.py            compile, unless a build for these sources exists
    python deploy/compile.py --force    compile again
    python deploy/compile.py --clean    remove the build: everything runs as Python

Needs a C compiler and Python's headers (gcc and the python3-dev of most systems).
Takes about a minute on two cores; ``deploy/setup.sh`` runs it once per change of the
sources. The build goes to a temporary directory first, and into place with its stamp
only when it is complete and the sources did not change meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams import compiled  # noqa: E402  (the checkout's, whatever is installed)


def build(work: Path) -> dict[str, str]:
    """Compile :data:`compiled.HOT_PATH` under ``work``; returns module -> extension path
    relative to the build directory. Runs in this process; the caller captures output."""
    from mypyc.build import mypycify
    from setuptools import Distribution

    paths = [name.replace(".", "/") + ".py" for name in compiled.HOT_PATH]
    extensions = mypycify(
        paths, opt_level="3", group_name=compiled.GROUP, target_dir=str(work / "c")
    )
    dist = Distribution({"name": "railyard-hot-path", "ext_modules": extensions})
    command = dist.get_command_obj("build_ext")
    command.build_lib = str(work / "lib")
    command.build_temp = str(work / "tmp")
    command.parallel = os.cpu_count() or 1
    dist.run_command("build_ext")
    built: dict[str, str] = {}
    for name in (*compiled.HOT_PATH, compiled.GROUP + "__mypyc"):
        *package, leaf = name.split(".")
        [found] = (work / "lib").joinpath(*package).glob(leaf + ".*.so")
        built[name] = str(found.relative_to(work / "lib"))
    return built


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="compile even if the build is current")
    ap.add_argument("--clean", action="store_true", help="remove .compiled/ and stop")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # the build itself, output captured
    args = ap.parse_args()
    os.chdir(ROOT)
    target = ROOT / compiled.BUILD_DIR
    if args.child:
        work = Path(args.child)
        modules = build(work)
        from mypy.version import __version__ as mypy_version

        stamp = compiled.stamp_for(str(ROOT / "streams"), modules, f"mypyc {mypy_version}")
        (work / "lib" / compiled.STAMP).write_text(json.dumps(stamp, indent=2), encoding="utf-8")
        return 0
    if args.clean:
        shutil.rmtree(target, ignore_errors=True)
        print(f"compile: removed {compiled.BUILD_DIR}/; the hot path runs as Python")
        return 0
    current = compiled.find_build(str(ROOT), {})
    if current.compiled and not args.force:
        print(f"compile: {current.describe()}, current for these sources")
        return 0
    before = compiled.sources_digest(str(ROOT / "streams"))
    started = time.monotonic()
    print(
        f"compile: compiling the hot path ({len(compiled.HOT_PATH)} modules) with mypyc,"
        " about a minute",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="railyard-compile-") as tmp:
        work = Path(tmp)
        log = work / "build.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", tmp], stdout=out, stderr=subprocess.STDOUT
            )
            while proc.poll() is None:
                time.sleep(10)
                print(f"compile: ... {time.monotonic() - started:.0f} s", flush=True)
        if proc.returncode != 0:
            tail = log.read_text(errors="replace").splitlines()[-25:]
            print("\n".join(tail), file=sys.stderr)
            print(
                "compile: mypyc could not compile the hot path (above: the end of its output)."
                " It needs a C compiler and Python's headers. Without them, run with"
                f" {compiled.PURE_PYTHON}=1: the same code, interpreted, slower.",
                file=sys.stderr,
            )
            return 1
        if compiled.sources_digest(str(ROOT / "streams")) != before:
            print("compile: the sources changed during the build; run it again", file=sys.stderr)
            return 1
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(work / "lib", target)
    found = compiled.find_build(str(ROOT), {})
    print(f"compile: {found.describe()} in {time.monotonic() - started:.0f} s -> {target}")
    return 0 if found.compiled else 1


if __name__ == "__main__":
    sys.exit(main())
