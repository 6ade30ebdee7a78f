"""The local single-node Elasticsearch server: fetched with mvn, run as a dedicated non-root user.

`yuqing es start|stop|status` and the test suite use this. Production clusters are configured through
``elasticsearch.hosts`` instead and never touch this module.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from yuqing.errors import YuqingError
from yuqing.settings import LocalElasticsearchSettings

log = logging.getLogger(__name__)

GROUP = "org.elasticsearch.distribution.integ-test-zip"
ARTIFACT = "elasticsearch"


class LocalESError(YuqingError):
    """The local server could not be fetched, configured or started."""


@dataclass(frozen=True)
class Health:
    status: str
    number_of_nodes: int


def _http_json(url: str, timeout: float) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        data: dict[str, object] = json.loads(resp.read().decode("utf-8"))
        return data


def read_pid(pid_file: Path) -> int | None:
    """The process id in ``pid_file`` when that process is alive, else None. A zombie is not alive: a node
    started with ``-d`` belongs to init once it daemonized, and a killed one stays a zombie until init reaps it
    (in a container that can take a while), still answering ``kill(pid, 0)``."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return None if _zombie(pid) else pid


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited but not been reaped (Linux ``/proc``; elsewhere: not known, False)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].startswith("Z")  # the state follows the command name in parentheses


def log_tail(path: Path, n: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


class Distribution:
    """The fetched distribution, unpacked once under ``local_es.home`` and shared by every local node.

    Also knows how to run its programs: as the dedicated non-root user when we are root, else as ourselves.
    """

    def __init__(self, settings: LocalElasticsearchSettings, *, maven_repo: Path | None = None) -> None:
        self.settings = settings
        self.maven_repo = maven_repo or Path.home() / ".m2" / "repository"

    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def dist_dir(self) -> Path:
        return self.home / f"elasticsearch-{self.settings.version}"

    @property
    def artifact_coordinate(self) -> str:
        return f"{GROUP}:{ARTIFACT}:{self.settings.version}:zip"

    def artifact_path(self) -> Path:
        return (
            self.maven_repo.joinpath(*GROUP.split("."))
            / ARTIFACT
            / self.settings.version
            / f"{ARTIFACT}-{self.settings.version}.zip"
        )

    def bin(self, name: str) -> Path:
        return self.dist_dir / "bin" / name

    def fetch(self) -> Path:
        """Download the distribution zip into the local Maven repository (skipped when present)."""
        path = self.artifact_path()
        if path.exists():
            return path
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalESError("mvn is not installed; run scripts/bootstrap.sh or apt-get install maven")
        cmd = [
            mvn, "-B", "-q", "dependency:get", f"-Dartifact={self.artifact_coordinate}", "-Dtransitive=false",
            f"-Dmaven.repo.local={self.maven_repo}",
        ]
        log.info("fetching %s with mvn", self.artifact_coordinate)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not path.exists():
            raise LocalESError(
                f"mvn could not fetch {self.artifact_coordinate} (exit {proc.returncode}): "
                f"{(proc.stdout + proc.stderr)[-2000:]}"
            )
        return path

    def unpack(self) -> None:
        """Fetch and unpack the distribution (idempotent)."""
        zip_path = self.fetch()
        self.home.mkdir(parents=True, exist_ok=True)
        if (self.dist_dir / "bin" / "elasticsearch").exists():
            return
        log.info("unpacking %s into %s", zip_path.name, self.home)
        partial = self.home / f".unpack-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                target = partial / info.filename
                zf.extract(info, partial)
                mode = (info.external_attr >> 16) & 0o777
                if mode and not info.is_dir():
                    target.chmod(mode)
        (partial / self.dist_dir.name).rename(self.dist_dir)
        shutil.rmtree(partial, ignore_errors=True)

    def java_home(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise LocalESError("java (17+) is not installed; run scripts/bootstrap.sh")
        return str(Path(java).resolve().parent.parent)

    def run_as_user(self) -> str | None:
        """The account that runs the server: the dedicated user when we are root, else ourselves."""
        return self.settings.user if os.geteuid() == 0 else None

    def as_user(self, cmd: list[str], env: dict[str, str]) -> list[str]:
        """``cmd`` wrapped to run as the server account with exactly ``env``."""
        user = self.run_as_user()
        if user is None:
            return cmd
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", user, "--", "env", *[f"{k}={v}" for k, v in env.items()], *cmd]

    def server_account(self) -> pwd.struct_passwd | None:
        """The dedicated user (created when missing) when we are root; None when we run as ourselves."""
        user = self.run_as_user()
        if user is None:
            return None
        try:
            return pwd.getpwnam(user)
        except KeyError:
            useradd = shutil.which("useradd") or "/usr/sbin/useradd"
            log.info("creating system user %s", user)
            proc = subprocess.run(
                [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                capture_output=True, text=True, check=False,
            )
            if proc.returncode not in (0, 9):  # 9: already exists (raced)
                raise LocalESError(f"useradd {user} failed: {proc.stderr.strip()}") from None
            return pwd.getpwnam(user)

    def give_to_server_account(self, *paths: Path, top_only: tuple[Path, ...] = ()) -> None:
        """Make the server account own ``paths`` (recursively) and ``top_only`` (just the folders themselves);
        checks that it can reach them."""
        pw = self.server_account()
        if pw is None:
            return
        for path in top_only:
            os.chown(path, pw.pw_uid, pw.pw_gid)
        for path in paths:
            for parent in path.parents:
                if parent == Path("/"):
                    break
                if not parent.stat().st_mode & stat.S_IXOTH:
                    raise LocalESError(
                        f"{parent} is not traversable by user {pw.pw_name}; choose a local_es folder outside it"
                    )
            for dirpath, _dirnames, filenames in os.walk(path):
                os.chown(dirpath, pw.pw_uid, pw.pw_gid)
                for name in filenames:
                    os.chown(os.path.join(dirpath, name), pw.pw_uid, pw.pw_gid, follow_symlinks=False)


class LocalElasticsearch:
    """Fetch, configure, start, stop and query the health of the local server. Every step is idempotent."""

    def __init__(self, settings: LocalElasticsearchSettings, *, maven_repo: Path | None = None) -> None:
        self.settings = settings
        self.dist = Distribution(settings, maven_repo=maven_repo)

    # -- layout ---------------------------------------------------------------------------------------
    @property
    def home(self) -> Path:
        return self.settings.home

    @property
    def dist_dir(self) -> Path:
        return self.dist.dist_dir

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / "elasticsearch.pid"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    # -- steps ----------------------------------------------------------------------------------------
    def install(self) -> None:
        """Unpack the distribution and write its configuration (idempotent)."""
        self.dist.unpack()
        for sub in ("data", "logs", "run"):
            (self.home / sub).mkdir(exist_ok=True)
        self._write_config()
        self.dist.give_to_server_account(
            *(self.home / sub for sub in ("data", "logs", "run")), self.dist_dir, top_only=(self.home,)
        )

    def _write_config(self) -> None:
        s = self.settings
        config = {
            "cluster.name": "yuqing-local",
            "node.name": "yuqing-local-1",
            "path.data": str(self.home / "data"),
            "path.logs": str(self.home / "logs"),
            "network.host": "127.0.0.1",
            "http.port": s.port,
            "transport.port": s.port + 100,
            "discovery.type": "single-node",
            "xpack.security.enabled": False,
            "cluster.routing.allocation.disk.threshold_enabled": False,
            "action.destructive_requires_name": False,
        }
        lines = [f"{k}: {json.dumps(v)}" for k, v in config.items()]
        (self.dist_dir / "config" / "elasticsearch.yml").write_text("\n".join(lines) + "\n")
        (self.dist_dir / "config" / "jvm.options.d").mkdir(exist_ok=True)
        (self.dist_dir / "config" / "jvm.options.d" / "yuqing-heap.options").write_text(
            f"-Xms{s.heap}\n-Xmx{s.heap}\n"
        )

    def health(self, timeout: float = 2.0) -> Health | None:
        """Cluster health, or None when nothing answers on the port."""
        try:
            data = _http_json(f"{self.url}/_cluster/health", timeout)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
            return None
        nodes = data.get("number_of_nodes", 0)
        return Health(status=str(data.get("status")), number_of_nodes=nodes if isinstance(nodes, int) else 0)

    def _read_pid(self) -> int | None:
        return read_pid(self.pid_file)

    def start(self) -> Health:
        """Start the server unless one already answers; wait until the cluster is yellow or green."""
        current = self.health()
        if current is not None and current.status in ("green", "yellow"):
            log.info("elasticsearch already running at %s (%s)", self.url, current.status)
            return current
        self.install()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ES_JAVA_HOME": self.dist.java_home(),
            "ES_PATH_CONF": str(self.dist_dir / "config"),
            "HOME": str(self.home),
        }
        cmd = self.dist.as_user([str(self.dist.bin("elasticsearch")), "-d", "-p", str(self.pid_file)], env)
        log.info("starting elasticsearch %s on %s", self.settings.version, self.url)
        out_log = self.home / "logs" / "startup.out"
        with out_log.open("ab") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False)
        if proc.returncode != 0:
            raise LocalESError(f"elasticsearch failed to start (exit {proc.returncode}); see {out_log}: "
                               f"{self._log_tail(out_log)}")
        return self.wait_healthy()

    def wait_healthy(self) -> Health:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            h = self.health()
            if h is not None and h.status in ("green", "yellow"):
                return h
            if self.pid_file.exists() and self._read_pid() is None:
                raise LocalESError(f"elasticsearch exited during start-up: {self._server_log_tail()}")
            time.sleep(0.5)
        raise LocalESError(
            f"elasticsearch did not become healthy within {self.settings.start_timeout_s:.0f}s: "
            f"{self._server_log_tail()}"
        )

    def stop(self, timeout: float = 60.0) -> bool:
        """Stop the server this module started; True when one was running."""
        pid = self._read_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._read_pid() is None:
                return True
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        return True

    def _server_log_tail(self) -> str:
        return self._log_tail(self.home / "logs" / "yuqing-local.log")

    @staticmethod
    def _log_tail(path: Path, n: int = 1500) -> str:
        return log_tail(path, n)
