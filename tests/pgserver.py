"""A throwaway PostgreSQL server (Debian's postgresql binaries) in a temporary folder.

initdb and pg_ctl refuse to run as root, so as root (CI) they run as `nobody` in a folder that
user owns. The server listens on 127.0.0.1 at a free port and on a Unix socket in its folder, with
password logins over TCP, so a wrong password is a real refusal.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "pipeline"
PASSWORD = "throwaway-pw"
UNPRIVILEGED = "nobody"


def find_bindir() -> Path | None:
    """The newest installed PostgreSQL's bin folder, or None when there is none."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def why_unavailable() -> str | None:
    """Why no server can be started here, or None when one can."""
    bindir = find_bindir()
    if bindir is None:
        return "PostgreSQL binaries (initdb, pg_ctl) not installed: apt-get install postgresql"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser, and initdb refuses to run as root"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg not installed: pip install -e '.[postgres]'"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgServer:
    """initdb + pg_ctl start on construction; `stop()` kills it, `start()` brings the same data back."""

    def __init__(self, *, fsync: bool = False) -> None:
        bindir = find_bindir()
        assert bindir is not None, why_unavailable()
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="pipeline-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.fsync = fsync
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", UNPRIVILEGED, "--"]
            shutil.chown(self.folder, UNPRIVILEGED)
        self.folder.chmod(0o755)
        password_file = self.folder / "pw"
        password_file.write_text(PASSWORD + "\n", encoding="utf-8")
        if self._as_user:
            shutil.chown(password_file, UNPRIVILEGED)
        self._run("initdb", "-D", str(self.data), "-U", USER, f"--pwfile={password_file}", "-E", "UTF8",
                  "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256")
        self.start()
        self._databases = 0

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run([*self._as_user, str(self.bindir / tool), *args], capture_output=True, text=True,
                                timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder} "
                   "-c max_connections=100")
        if not self.fsync:  # a test server: speed over surviving a power cut
            options += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-o", options, "start")

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash as far as clients can tell: every connection dropped at once."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres", password: str | None = PASSWORD) -> str:
        login = f"{USER}:{password}" if password is not None else USER
        return f"postgresql://{login}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database; returns its URL."""
        import psycopg

        self._databases += 1
        name = f"{prefix}{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass  # already stopped
        except subprocess.TimeoutExpired:  # a machine too busy for pg_ctl: SIGQUIT is its immediate stop
            try:
                os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGQUIT)
            except (OSError, ValueError, IndexError):
                pass
        shutil.rmtree(self.folder, ignore_errors=True)
