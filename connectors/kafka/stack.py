"""The project-started Kafka broker: one KRaft node (broker + controller) as a local process.

No Docker: Maven resolves the broker's jars once into a cache shared by every checkout,
and ``java -cp libs/* kafka.Kafka`` runs detached with its data and logs under
``settings.kafka_dir``. Start-up time matters (CI starts one per test session), so the
JVM runs C1-only with the serial collector and, from the second start on, a class-data
sharing archive that the first clean stop writes (see :meth:`LocalBroker.down`).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import psutil

from connectors.kafka.admin import count_topics, wait_for_broker
from streams.domain.errors import ConfigError, StackError
from streams.settings import PROJECT_ROOT, Settings

DEPLOY_DIR = PROJECT_ROOT / "deploy" / "kafka"
POM = DEPLOY_DIR / "pom.xml"
LOG4J_CONFIG = DEPLOY_DIR / "log4j2.xml"
NODE_ID = 1

DEFAULT_JVM_OPTS: tuple[str, ...] = (
    "-Xms256m",
    "-Xmx512m",
    # A dev/CI broker is start-up bound, not throughput bound: C2 compiling Kafka's
    # start-up path on a small CI box costs more than it ever pays back (~2x slower up).
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Djava.awt.headless=true",
)
"""Overridden as a whole by ``RAILYARD_KAFKA_JVM_OPTS`` (e.g. for a benchmark run)."""


def _kafka_version() -> str:
    """The version pinned in the pom, so the pom stays the one place to bump Kafka."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ElementTree.parse(POM).find("m:properties/m:kafka.version", ns)
    if node is None or not node.text:
        raise ConfigError(f"{POM} does not set <kafka.version>")
    return node.text.strip()


KAFKA_VERSION = _kafka_version()


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "railyard"


def default_libs_dir() -> Path:
    override = os.environ.get("RAILYARD_KAFKA_LIBS")
    return Path(override) if override else cache_root() / f"kafka-{KAFKA_VERSION}" / "libs"


class PortInUseError(StackError):
    """A port the broker needs is taken; retrying on other ports can succeed."""


@dataclass(frozen=True)
class BrokerStatus:
    running: bool
    pid: int | None
    bootstrap: str
    data_dir: Path
    log_dir: Path
    topics: int | None
    """Topics outside Kafka's internal ``__*`` ones; None when the broker does not answer."""


def broker_port(settings: Settings) -> int:
    """The port of the first bootstrap address: the one the local broker listens on."""
    first = settings.kafka_bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"RAILYARD_KAFKA_BOOTSTRAP must be host:port, got {first!r}")
    if int(port) == settings.kafka_controller_port:
        raise ConfigError(f"RAILYARD_KAFKA_CONTROLLER_PORT must differ from the broker's {port}")
    return int(port)


def server_properties(settings: Settings) -> str:
    """The broker's whole configuration, rewritten on every start so port changes apply."""
    port, controller = broker_port(settings), settings.kafka_controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # Static voters, not a dynamic quorum formatted with --standalone: the latter bakes
        # the controller's endpoint into the metadata log, so a later port change strands it.
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(settings.kafka_dir / "data"),
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        # 50 partitions by default: created on the first consumer group, seconds on a CI box.
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "4",
        # The cleaner's 128 MiB default would take a quarter of the heap.
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    while True:
        text = urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka rejects ids that look like a CLI flag
            return text


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not Path(found).exists():
        raise StackError("Java 17+ not found: install a JDK or set JAVA_HOME")
    return found


def _tail(path: Path, lines: int = 30, start: int = 0) -> str:
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the JVM binds: connections of a just-stopped broker in TIME_WAIT don't count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class LocalBroker:
    """Install, start, stop and inspect the broker for one :class:`Settings`."""

    def __init__(
        self,
        settings: Settings,
        *,
        libs_dir: Path | None = None,
        jvm_opts: Sequence[str] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if jvm_opts is None:
            jvm_opts = (
                shlex.split(os.environ.get("RAILYARD_KAFKA_JVM_OPTS", "")) or DEFAULT_JVM_OPTS
            )
        self.settings = settings
        self.libs_dir = libs_dir or default_libs_dir()
        self.jvm_opts = tuple(jvm_opts)
        self._say = progress or (lambda _msg: None)
        self._proc: subprocess.Popen[bytes] | None = None
        self._cds_pending: Path | None = None
        home = settings.kafka_dir
        self.data_dir = home / "data"
        self.log_dir = home / "logs"
        self.properties_file = home / "server.properties"
        self.stdout_file = self.log_dir / "kafka.out"
        self.pid_file = settings.run_dir / "kafka.pid"

    # -- install -----------------------------------------------------------------

    def installed(self) -> bool:
        return (self.libs_dir / f"kafka_2.13-{KAFKA_VERSION}.jar").exists()

    def install(self) -> Path:
        """Resolve the broker's jars with Maven, once: later calls find them cached."""
        if self.installed():
            if not any(self.libs_dir.glob("log4j-slf4j-impl-*.jar")):
                # Kafka 4.1 logs through slf4j 1.7; without this binding (the slf4j2 one
                # does not count) every broker log line is silently dropped.
                self._say(f"warning: no log4j-slf4j-impl jar in {self.libs_dir}; no broker logs")
            return self.libs_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError(
                "Maven (mvn) not found: install Maven 3.8+, or set RAILYARD_KAFKA_LIBS "
                f"to a directory holding the Kafka {KAFKA_VERSION} jars"
            )
        self._say(f"Resolving Apache Kafka {KAFKA_VERSION} with Maven into {self.libs_dir} ...")
        started = time.monotonic()
        # Copy next to the target, then rename: an interrupted run never looks installed.
        tmp = self.libs_dir.with_name(f".{self.libs_dir.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies"]
        cmd.append(f"-DoutputDirectory={tmp}")
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            output = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise StackError(f"Maven could not resolve the Kafka jars:\n{output}")
        try:
            tmp.rename(self.libs_dir)
        except OSError:  # another process finished first; its copy is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
        jars = len(list(self.libs_dir.glob("*.jar")))
        self._say(f"Installed {jars} jars in {time.monotonic() - started:.1f}s")
        return self.libs_dir

    # -- lifecycle ---------------------------------------------------------------

    def pid(self) -> int | None:
        """The broker's pid if the pid file names a live broker of this home, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
            proc = psutil.Process(pid)
            alive = proc.status() != psutil.STATUS_ZOMBIE
            ours = str(self.properties_file) in proc.cmdline()
        except (FileNotFoundError, ValueError, psutil.Error):
            return None
        return pid if alive and ours else None

    def up(self, timeout: float = 60.0) -> BrokerStatus:
        """Start the broker and wait until it answers; a no-op when it already runs."""
        if self.pid() is not None:
            return self.status()
        # Checked up front: with the port taken, a client could reach some other broker
        # there and take it for ours while ours dies of a bind error.
        for port in (broker_port(self.settings), self.settings.kafka_controller_port):
            if _port_taken(port):
                raise PortInUseError(f"port {port} on 127.0.0.1 is in use by another process")
        libs = self.install()
        for d in (self.data_dir, self.log_dir, self.settings.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text(server_properties(self.settings))
        if not (self.data_dir / "meta.properties").exists():
            self._format(libs)
        server_log = self.log_dir / "server.log"
        log_offset = server_log.stat().st_size if server_log.exists() else 0
        self._say(f"Starting Kafka {KAFKA_VERSION} on {self.settings.kafka_bootstrap} ...")
        started = time.monotonic()
        proc = self._spawn(libs)
        self.pid_file.write_text(f"{proc.pid}\n")
        try:
            wait_for_broker(
                self.settings.kafka_bootstrap, timeout, alive=lambda: proc.poll() is None
            )
        except StackError as exc:
            self._stop(proc.pid, 10.0, keep_archive=False)
            if self._cds_pending is not None:  # dumped by a JVM that exited on its own
                self._cds_pending.unlink(missing_ok=True)
            tail = _tail(server_log, start=log_offset) + "\n" + _tail(self.stdout_file)
            kind = PortInUseError if "Address already in use" in tail else StackError
            raise kind(f"{exc}\n--- last lines of {self.log_dir} ---\n{tail.strip()}") from exc
        self._say(f"Kafka answered after {time.monotonic() - started:.1f}s (pid {proc.pid})")
        return self.status()

    def down(self, timeout: float = 30.0) -> bool:
        """Stop the broker cleanly (SIGKILL after ``timeout``); False if it was not running."""
        pid = self.pid()
        stopped = pid is not None and self._stop(pid, timeout)
        self.pid_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> BrokerStatus:
        pid = self.pid()
        topics = count_topics(self.settings.kafka_bootstrap) if pid is not None else None
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=self.settings.kafka_bootstrap,
            data_dir=self.data_dir,
            log_dir=self.log_dir,
            topics=topics,
        )

    # -- internals ---------------------------------------------------------------

    def _java_cmd(self, libs: Path, *args: str) -> list[str]:
        return [
            _java(),
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.dir={self.log_dir}",
            *args,
            "-cp",
            f"{libs}/*",
        ]

    def _format(self, libs: Path) -> None:
        """``kafka-storage.sh format`` for a new data dir; never run on one holding data."""
        cluster_id = new_cluster_id()
        self._say(f"Formatting {self.data_dir} (cluster id {cluster_id})")
        cmd = self._java_cmd(libs, *DEFAULT_JVM_OPTS, *self._cds_opts(libs, dump=False))
        cmd += ["kafka.tools.StorageTool", "format", "-t", cluster_id]
        cmd += ["-c", str(self.properties_file)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = "\n".join((done.stdout + done.stderr).splitlines()[:30])
            raise StackError(f"formatting {self.data_dir} failed:\n{output}")

    def _spawn(self, libs: Path) -> subprocess.Popen[bytes]:
        cmd = self._java_cmd(libs, *self.jvm_opts, *self._cds_opts(libs, dump=True))
        cmd += ["kafka.Kafka", str(self.properties_file)]
        with self.stdout_file.open("wb") as out:
            # A new session: Ctrl-C in the terminal that ran `stack up` must not reach it.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.settings.kafka_dir,
                start_new_session=True,
            )
        return self._proc

    def _cds_archive(self, libs: Path) -> Path:
        """Keyed by JVM and jar set: an archive is only valid for the exact classpath."""
        key = hashlib.sha256(os.path.realpath(_java()).encode())
        for jar in sorted(libs.glob("*.jar")):
            st = jar.stat()
            key.update(f"{jar}:{st.st_size}:{st.st_mtime_ns}".encode())
        return cache_root() / "cds" / f"kafka-{KAFKA_VERSION}-{key.hexdigest()[:16]}.jsa"

    def _cds_opts(self, libs: Path, *, dump: bool) -> list[str]:
        """Use the archive if there is one, else (``dump``) have this JVM write it."""
        archive = self._cds_archive(libs)
        if dump:
            self._cds_pending = None
        quiet = "-Xlog:cds*=off"
        if archive.exists():
            return [f"-XX:SharedArchiveFile={archive}", quiet]
        if not dump:
            return []
        archive.parent.mkdir(parents=True, exist_ok=True)
        for stale in archive.parent.glob("*.tmp"):  # from brokers killed before a clean stop
            if time.time() - stale.stat().st_mtime > 24 * 3600:
                stale.unlink(missing_ok=True)
        # Dumped when this JVM exits; down() moves it into place once the dump is whole.
        self._cds_pending = archive.with_name(f"{archive.name}.{os.getpid()}-{time.time_ns()}.tmp")
        return [f"-XX:ArchiveClassesAtExit={self._cds_pending}", quiet]

    def _stop(self, pid: int, timeout: float, *, keep_archive: bool = True) -> bool:
        try:
            proc = psutil.Process(pid)
            pending = [a.split("=", 1)[1] for a in proc.cmdline() if "ArchiveClassesAtExit" in a]
            proc.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            return False
        self._say(f"Stopping Kafka (pid {pid}) ...")
        clean = self._wait(proc, timeout)
        if not clean:
            self._say(f"Kafka did not stop within {timeout:.0f}s; killing it")
            proc.kill()
            self._wait(proc, 10.0)
        for tmp in map(Path, pending):
            final = tmp.with_name(tmp.name.split(".jsa.")[0] + ".jsa")
            # Only a clean exit of a broker that started wrote a whole, useful archive.
            if clean and keep_archive and tmp.exists() and not final.exists():
                tmp.replace(final)
            tmp.unlink(missing_ok=True)
        return True

    def _wait(self, proc: psutil.Process, timeout: float) -> bool:
        try:
            if self._proc is not None and self._proc.pid == proc.pid:
                self._proc.wait(timeout)  # our child: reap it so no zombie lingers
            else:
                proc.wait(timeout)
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            return False
        except psutil.NoSuchProcess:
            pass
        return True
