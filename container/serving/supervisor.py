"""The model server's process, watched: whether its port is free, its /ping, and restarts
when no worker can start any more; then every process it started ended with it."""

import os
import signal
import socket
import sys
import time
import urllib.request

from container.serving.parameters import BIND_TO_PORT_ENV, RESTART_AFTER_ENV

# The supervisor's /ping every this many seconds, and its patience with a restarted server.
HEALTH_CHECK_S = 1.0
START_LIMIT_S = 180.0
# More restarts than this within the window end `serve`: the fault is not passing.
MAX_RESTARTS = 3
RESTART_WINDOW_S = 600


def port_problem(port, management=True):
    """Why the server cannot listen on ``port`` and, with ``management``, the loopback
    ``port + 1`` (its management API), or None. The server itself, on a port in use, logs a Java
    exception, exits 0 and leaves its Python workers running."""
    addresses = [("0.0.0.0", port)] + ([("127.0.0.1", port + 1)] if management else [])
    for host, number in addresses:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server binds
            try:
                probe.bind((host, number))
            except OSError as e:
                return (
                    f"cannot serve on port {port}: {host}:{number} is in use ({e.strerror}); "
                    f"stop what holds it, or choose another port with {BIND_TO_PORT_ENV}"
                )
    return None


def end_process_group(pgid, grace_s=5.0):
    """SIGTERM to every process left in group ``pgid`` (workers the server started), then
    SIGKILL to any still there after ``grace_s``."""
    deadline = time.monotonic() + grace_s
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def healthy(port, timeout_s=2.0):
    """Whether the server on ``port`` answers /ping with 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=timeout_s) as r:
            return r.status == 200
    except (OSError, ValueError):  # refused, timed out, or a 503 (HTTPError is an OSError)
        return False


class Supervisor:
    """Runs the model server that ``start()`` starts until it stops or `serve` is told to stop,
    and restarts it when /ping on ``port`` turns unhealthy for ``restart_after_s`` after it was
    healthy: the process the workers fork from may die (the out-of-memory killer picks it: it
    holds torch and the model), and then no worker can start again. A restart that is not
    healthy within ``start_limit_s``, or too many restarts in a row, ends `serve` non-zero, so
    that the platform replaces the container instead of keeping one that never answers."""

    def __init__(
        self,
        start,
        port,
        restart_after_s,
        management=True,
        loaded_file=None,
        start_limit_s=START_LIMIT_S,
    ):
        self.start, self.port, self.management = start, port, management
        # Created by the handler once the model has loaded: a server that dies right after
        # counts as having been healthy, even if no /ping saw it so.
        self.loaded_file = loaded_file
        self.restart_after_s, self.start_limit_s = restart_after_s, start_limit_s
        self.server = start()
        self.stopping = []
        self.restarts = []  # when each restart happened (monotonic seconds)

    def stop(self, signum=None, frame=None):
        self.stopping.append(signum)
        try:
            os.killpg(self.server.pid, signal.SIGTERM)
        except ProcessLookupError:  # the server and everything it started have already gone
            pass

    def restart(self, why):
        print(f"{why}: restarting multi-model-server", file=sys.stderr, flush=True)
        end_process_group(self.server.pid)
        self.server.wait()
        deadline = time.monotonic() + 10  # the new server fails at once on a port still held
        while port_problem(self.port, self.management) and time.monotonic() < deadline:
            time.sleep(0.2)
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S] + [now]
        if self.loaded_file and os.path.exists(self.loaded_file):
            os.remove(self.loaded_file)
        self.server = self.start()

    def run(self, failure_file=None, model_dir=None):
        """The exit code for `serve`. A worker that cannot load the model in ``model_dir``
        leaves its reason in ``failure_file``: `serve` stops with it, instead of a server whose
        /ping stays 503 and whose requests wait for a worker forever."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.was_healthy, self.unhealthy_since = False, None
        self.started = next_check = time.monotonic()
        while self.server.poll() is None:
            if failure_file and os.path.exists(failure_file):
                with open(failure_file) as f:
                    print(
                        f"cannot serve the model in {model_dir}: {f.read()}",
                        file=sys.stderr,
                        flush=True,
                    )
                return self.end()
            now = time.monotonic()
            if now >= next_check and not self.stopping:
                next_check = now + HEALTH_CHECK_S
                code = self.check_health(now)
                if code is not None:
                    return code
            time.sleep(0.2)
        end_process_group(self.server.pid)
        if not self.stopping:
            print(
                f"multi-model-server stopped by itself (exit code {self.server.returncode}); "
                f"its log above says why",
                file=sys.stderr,
                flush=True,
            )
            return self.server.returncode or 1
        return self.server.returncode

    def check_health(self, now):
        """One /ping: restarts the server when it has been unhealthy too long after it was
        healthy; the exit code for `serve` when that no longer helps, else None."""
        if healthy(self.port):
            self.was_healthy, self.unhealthy_since = True, None
            return None
        if self.loaded_file and os.path.exists(self.loaded_file):
            self.was_healthy = True
        if not self.was_healthy:
            if self.restarts and now - self.started > self.start_limit_s:
                return self.give_up(
                    f"multi-model-server not healthy {self.start_limit_s:g} s after a restart"
                )
            return None
        self.unhealthy_since = self.unhealthy_since or now
        if now - self.unhealthy_since < self.restart_after_s:
            return None
        if len(self.restarts) >= MAX_RESTARTS:
            return self.give_up(
                f"/ping unhealthy again after {len(self.restarts)} restarts in "
                f"{RESTART_WINDOW_S // 60} minutes"
            )
        self.restart(
            f"/ping unhealthy for {now - self.unhealthy_since:.0f} s "
            f"({RESTART_AFTER_ENV}={self.restart_after_s:g})"
        )
        self.was_healthy, self.unhealthy_since = False, None
        self.started = time.monotonic()
        return None

    def give_up(self, why):
        print(f"{why}: stopping serve", file=sys.stderr, flush=True)
        return self.end()

    def end(self):
        """Stops the server and every process it started; the exit code for `serve`, 1."""
        self.stop()
        self.server.wait()
        end_process_group(self.server.pid)
        return 1
