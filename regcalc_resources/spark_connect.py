"""A local Spark Connect server: the one the pyspark wheel carries (``sbin/start-connect-server.sh``
and the ``spark-connect`` jar), on loopback, for development, the tests and the benchmarks.

Production points ``REGCALC_SPARK_REMOTE`` at a cluster's server instead (README, "Deploy"). The
server may be started so that it cannot see some of this machine's directories (``hidden``: an
empty read-only file system mounted over each, in a mount namespace of its own), which is how the
tests prove that a remote engine is given nothing but paths under the shared storage root.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def pyspark_home() -> Path:
    """SPARK_HOME of the installed pyspark wheel (its ``bin``, ``sbin`` and ``jars``)."""
    import importlib.util

    return Path(importlib.util.find_spec("pyspark").origin).parent


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def namespace_prefix() -> list[str] | None:
    """The ``unshare`` command that gives a process a private mount namespace here (as root, or
    through an unprivileged user namespace), or None if the machine allows neither."""
    candidates = [["unshare", "--mount", "--propagation", "private"]] if os.geteuid() == 0 else []
    candidates.append(["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"])
    for prefix in candidates:
        try:
            if subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0:
                return prefix
        except (OSError, subprocess.SubprocessError):
            return None
    return None


@dataclass
class LocalConnectServer:
    """A running server: ``url`` (``sc://127.0.0.1:<port>``), its log file, and whether ``hidden``
    directories really are invisible to it (``isolated``)."""

    url: str
    port: int
    process: subprocess.Popen
    log: Path
    isolated: bool

    def stop(self, timeout: float = 30) -> None:
        """Stop the server (its whole process group, which it started in) and wait for it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)

    def __enter__(self) -> "LocalConnectServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_local_connect_server(work_dir: Path, hidden: list[Path] = (), cores: int = 2, memory: str = "2g",
                               conf: dict[str, str] | None = None, timeout: float = 120) -> LocalConnectServer:
    """Start ``start-connect-server.sh --wait`` (in the foreground of its own process group) on a
    free loopback port, with ``local[cores]``; its log, scratch space and pid files go under
    ``work_dir``. Each directory of ``hidden`` is covered, for the server only, by an empty
    read-only tmpfs when the machine allows a private mount namespace (``isolated``), so a path
    the server is given there does not exist for it. Returns once the server accepts connections."""
    work_dir = Path(work_dir)
    (work_dir / "scratch").mkdir(parents=True, exist_ok=True)
    port = free_port()
    home = pyspark_home()
    settings = {"spark.connect.grpc.binding.address": "127.0.0.1", "spark.connect.grpc.binding.port": str(port),
                "spark.local.dir": str(work_dir / "scratch"), "spark.ui.enabled": "false",
                "spark.driver.memory": memory, "spark.sql.session.timeZone": "UTC", **(conf or {})}
    command = ["bash", str(home / "sbin" / "start-connect-server.sh"), "--wait", "--master", f"local[{cores}]"]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    prefix = namespace_prefix() if hidden else None
    if prefix:
        mounts = " && ".join(f'mount -t tmpfs -o ro,size=1m tmpfs "{Path(p).resolve()}"' for p in hidden)
        command = [*prefix, "bash", "-c", f'{mounts} && exec "$@"', "connect-server", *command]
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(work_dir / "logs"),
           "SPARK_PID_DIR": str(work_dir), "SPARK_IDENT_STRING": f"regcalc-{port}"}
    for name in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_LOCAL_REMOTE", "PYSPARK_SUBMIT_ARGS"):
        env.pop(name, None)
    log = work_dir / "connect-server.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                   start_new_session=True)
    server = LocalConnectServer(f"sc://127.0.0.1:{port}", port, process, log, isolated=bool(prefix))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Spark Connect server exited ({process.returncode}): see {log}\n"
                               + log.read_text(errors="replace")[-3000:])
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.25)
    server.stop()
    raise TimeoutError(f"the Spark Connect server did not listen on 127.0.0.1:{port} within {timeout:.0f} s: see {log}")
