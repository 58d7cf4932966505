"""Real services for the chaos test, the benchmarks and the soak: free ports, a redis-server of one's own,
supervised `flask worker` / `flask scheduler` processes, and process memory. Plain helpers, no fixtures."""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check, timeout=10.0, every=0.05, message="condition"):
    """Call `check` every `every` seconds until it returns something truthy, and return that; AssertionError
    naming `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


def wait_for(check, timeout=30.0, every=0.05) -> bool:
    """`wait_until` for callers that carry on either way: False after `timeout` seconds."""
    try:
        return bool(wait_until(check, timeout, every))
    except AssertionError:
        return False


class RedisServer:
    """A redis-server on a free port (restarting it disturbs nobody else). Nothing is persisted."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        if not wait_for(lambda: _pings(client), timeout=5):
            raise RuntimeError("redis-server did not start")

    def restart(self):
        self.stop()
        self.start()

    def stop(self):
        self.process.kill()
        self.process.wait()


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


class Processes:
    """`flask worker` processes and a `flask scheduler`, restarted when they exit (as systemd would). Their output
    goes to one log file, whose end `log_tail()` gives for a failing test's message."""

    def __init__(self, env, queues=("amocrm", "default"), worker_args=()):
        self.env = env
        self.worker_command = ("worker", *queues, *worker_args)
        self.workers: list[subprocess.Popen] = []
        self.scheduler = None
        self.restarts = 0
        self.log = tempfile.NamedTemporaryFile(prefix="leadpath-processes-", suffix=".log", delete=False)

    def spawn(self, *command):
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", *command], cwd=ROOT, env=self.env,
                                stdout=self.log, stderr=subprocess.STDOUT)

    def log_tail(self, lines=60) -> str:
        with open(self.log.name, errors="replace") as log:
            return "".join(log.readlines()[-lines:])

    def start(self, workers=2):
        self.workers = [self.spawn(*self.worker_command) for _ in range(workers)]
        self.scheduler = self.spawn("scheduler")

    def supervise(self):
        for index, worker in enumerate(self.workers):
            if worker.poll() is not None:
                self.workers[index] = self.spawn(*self.worker_command)
                self.restarts += 1
        if self.scheduler.poll() is not None:
            self.scheduler = self.spawn("scheduler")
            self.restarts += 1

    def kill_worker(self, index=0):
        os.kill(self.workers[index].pid, signal.SIGKILL)

    def stop(self):
        for process in [*self.workers, self.scheduler]:
            process.terminate()
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.log.close()
        os.unlink(self.log.name)


def rss_kib(pid: int) -> int:
    """Resident memory of a process in KiB (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except FileNotFoundError:
        return []
