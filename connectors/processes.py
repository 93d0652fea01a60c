"""Starting and stopping Railyard's own long-running processes (worker, sink).

Used by the demo, the tests (which SIGKILL them on purpose) and the benchmarks.
Each child gets the parent's settings through ``RAILYARD_*`` variables and writes
its output to a log file, so a failure can be read afterwards. Each is recorded in
``<run_dir>/<name>.proc`` (pid and start time) until it is stopped, so a later
process (the next ``railyard demo``) can stop what an earlier one left running,
and never a stranger that reused the pid.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from streams.settings import Settings


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    record: Path | None = None
    """Where :func:`spawn` recorded the process; removed once :meth:`stop` saw it exit."""

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no flush, no commit, as a crash would."""
        if self.alive:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``."""
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.record is not None:
            self.record.unlink(missing_ok=True)
        return self.popen.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


RECORD_SUFFIX = ".proc"


def spawn(
    name: str,
    command: list[str],
    settings: Settings,
    log_dir: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """Run ``railyard <command>`` in the background with these settings, on top of
    ``environ`` (default: this process's environment)."""
    log_dir = log_dir or settings.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    inherited = os.environ if environ is None else environ
    env = {**inherited, **settings.to_env(), "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        started = psutil.Process(popen.pid).create_time()
    except psutil.NoSuchProcess:  # died at once: nothing to stop later, the log says why
        return ManagedProcess(name, popen, log_path)
    record = settings.run_dir / f"{name}{RECORD_SUFFIX}"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{popen.pid} {started}\n")
    return ManagedProcess(name, popen, log_path, record)


def stop_recorded(run_dir: Path, names: list[str], timeout: float = 30.0) -> list[str]:
    """Stop the processes :func:`spawn` recorded under ``run_dir`` as ``names``, in order
    (SIGTERM, then SIGKILL after ``timeout``); returns the names of those that were running.

    A record whose pid now belongs to another process (same pid, other start time) or to
    no process is only removed.
    """
    stopped: list[str] = []
    for name in names:
        path = run_dir / f"{name}{RECORD_SUFFIX}"
        try:
            pid, started = path.read_text().split()
            proc = psutil.Process(int(pid))
            ours = (
                abs(proc.create_time() - float(started)) < 0.01 and "streams.cli" in proc.cmdline()
            )
        except (FileNotFoundError, ValueError, psutil.Error):
            ours = False
        if ours:
            try:
                proc.terminate()
                try:
                    proc.wait(timeout)
                except psutil.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            except psutil.NoSuchProcess:
                pass  # it exited meanwhile
            stopped.append(name)
        path.unlink(missing_ok=True)
    return stopped


SHUTDOWN_GRACE_S = 10.0
"""How long a stopping process may take (flush, commit, leave its group) before it ends
anyway. Nothing is lost by the cut: offsets are committed only past delivered work, so
what was not committed is redone by the next run."""


def arm_shutdown_deadline(grace_s: float = SHUTDOWN_GRACE_S) -> None:
    """On the first SIGTERM or SIGINT, the process has ``grace_s`` to stop on its own; then
    it exits. With the broker away, a clean stop waits for commits and group leaves that
    cannot happen (it took 61 s, measured); an operator's SIGTERM must mean seconds.

    Call it after the process installed its own handlers: each goes on being called.
    """
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def on_signal(number: int, frame: object, previous: object = previous) -> None:
            _exit_after(grace_s, number)
            if callable(previous):
                previous(number, frame)
            elif previous == signal.SIG_DFL:
                signal.signal(number, signal.SIG_DFL)
                os.kill(os.getpid(), number)

        signal.signal(signum, on_signal)


_deadline_armed = threading.Event()


def _exit_after(grace_s: float, signum: int) -> None:
    if _deadline_armed.is_set():
        return
    _deadline_armed.set()

    def cut() -> None:
        time.sleep(grace_s)
        logging.getLogger("railyard").warning(
            "still stopping %.0f s after signal %d (is the broker away?): exiting now;"
            " uncommitted work is redone on the next start",
            grace_s,
            signum,
        )
        logging.shutdown()
        os._exit(0)

    threading.Thread(target=cut, name="shutdown-deadline", daemon=True).start()
