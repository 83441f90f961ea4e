"""`python -m kore_sessions.cli` in a process of its own, without paying for its imports each time.

A fresh interpreter spends most of a short command importing dlt, DuckDB, pyarrow and the rest
(about 0.8 s of CPU), and the tests run the command hundreds of times. A zygote, started once
per test process, imports `kore_sessions.cli.parser` and everything it pulls in, then forks a
child per command: the child takes the command's working folder, environment, argv and
stdin/stdout/stderr, runs `kore_sessions.cli` as `-m` does (runpy), ends the way the interpreter
ends (non-daemon threads joined, atexit handlers, streams flushed) and exits with the command's
code. Its exit status reaches the test as a `subprocess.CompletedProcess`'s, a signal as a
negative code, exactly as `subprocess.run` gives them.

A command whose environment differs from the zygote's in a variable that may be read while
modules are imported (anything but the names in `RUNTIME_VARIABLES`) runs in a fresh interpreter
instead, as does every command when the zygote cannot start (the fresh interpreter then shows
why) or when KORE_TEST_FRESH_INTERPRETERS=1.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

# Read when a command runs, not when modules are imported: the project's and dlt's settings,
# and the folders dlt resolves per run.
RUNTIME_PREFIXES = (
    "SOURCES__",
    "DESTINATION__",
    "MODELS__",
    "ORCHESTRATION__",
    "RUNTIME__",
    "NORMALIZE__",
    "EXTRACT__",
    "LOAD__",
    "DATA_WRITER__",
)
RUNTIME_VARIABLES = {
    "DLT_DATA_DIR",
    "DLT_PROJECT_DIR",
    "DLT_LOCAL_DIR",
    "PWD",
    "OLDPWD",
    "PYTEST_CURRENT_TEST",
}
FRESH = os.environ.get("KORE_TEST_FRESH_INTERPRETERS") == "1"
MODULE = "kore_sessions.cli"

ZYGOTE = r"""
import json, os, selectors, sys

def send(message):
    os.write(1, (json.dumps(message) + "\n").encode())

try:
    import kore_sessions.cli.parser  # noqa: F401  (the command's imports, once)
except BaseException as exc:
    send({"failed": repr(exc)})
    sys.exit(0)

import gc

# What the imports made, frozen before forking (as the command itself freezes it at its start):
# a child's collections then neither walk it nor copy its pages.
gc.collect()
gc.freeze()

import atexit, runpy, threading, traceback

def exit_code(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1

def child(request, close):
    code = 1
    try:
        for fd in close:
            os.close(fd)
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        os.close(stdin)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = os.getcwd()
        sys.argv = ["-m", *request["args"]]
        try:
            runpy._run_module_as_main(request["module"])
            code = 0
        except SystemExit as exc:
            code = exit_code(exc)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            code = 1
        threading._shutdown()
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)

selector = selectors.DefaultSelector()
selector.register(0, selectors.EVENT_READ, None)
pending = b""
send({"ready": os.getpid()})
while True:
    for key, _ in selector.select():
        if key.data is None:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                sys.exit(0)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                close = [selector.fileno()] + [
                    k.fd for k in selector.get_map().values() if k.data is not None
                ]
                pid = os.fork()
                if pid == 0:
                    child(request, close)
                pidfd = os.pidfd_open(pid)
                selector.register(pidfd, selectors.EVENT_READ, (request["id"], pid))
                send({"id": request["id"], "pid": pid})
        else:
            request_id, pid = key.data
            selector.unregister(key.fd)
            os.close(key.fd)
            _, status = os.waitpid(pid, 0)
            send({"id": request_id, "status": status})
"""


class Zygote:
    """The forking process of this test process, and the answers it sends back."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.process = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            cwd=tempfile.gettempdir(),
        )
        assert self.process.stdout is not None
        first = json.loads(self.process.stdout.readline() or '{"failed": "no answer"}')
        self.failed = first.get("failed")
        self.lock = threading.Lock()
        self.ids = itertools.count()
        self.answers: dict[int, dict[str, int]] = {}
        self.arrived = threading.Condition()
        if not self.failed:
            threading.Thread(target=self.read_answers, daemon=True).start()

    def read_answers(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            answer = json.loads(line)
            with self.arrived:
                self.answers.setdefault(answer["id"], {}).update(answer)
                self.arrived.notify_all()
        with self.arrived:
            self.failed = "the zygote ended"
            self.arrived.notify_all()

    def takes(self, env: Mapping[str, str]) -> bool:
        """Whether a command with this environment may run in a child of the zygote."""
        if self.failed:
            return False
        names = set(env) | set(self.env)
        return all(
            env.get(name) == self.env.get(name)
            for name in names
            if name not in RUNTIME_VARIABLES and not name.startswith(RUNTIME_PREFIXES)
        )

    def run(
        self, args: list[str], env: Mapping[str, str], cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", MODULE, *args]
        with tempfile.TemporaryDirectory(prefix="kore-command-") as scratch:
            stdout, stderr = Path(scratch) / "stdout", Path(scratch) / "stderr"
            request_id = next(self.ids)
            request = {
                "id": request_id,
                "module": MODULE,
                "args": list(args),
                "env": dict(env),
                "cwd": str(Path(cwd).resolve()),
                "stdout": str(stdout),
                "stderr": str(stderr),
            }
            assert self.process.stdin is not None
            with self.lock:
                self.process.stdin.write((json.dumps(request) + "\n").encode())
                self.process.stdin.flush()
            with self.arrived:
                answered = self.arrived.wait_for(
                    lambda: "status" in self.answers.get(request_id, {}) or self.failed, timeout
                )
                answer = self.answers.pop(request_id, {})
            if "status" not in answer:
                if "pid" in answer:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(answer["pid"], 9)
                if not answered:
                    raise subprocess.TimeoutExpired(argv, timeout)
                raise RuntimeError(f"the command's zygote failed: {self.failed}")
            code = os.waitstatus_to_exitcode(answer["status"])
            return subprocess.CompletedProcess(argv, code, read_text(stdout), read_text(stderr))


def read_text(path: Path) -> str:
    """A captured stream as `subprocess.run(text=True)` decodes it."""
    with open(path, encoding=None, newline=None) as stream:
        return stream.read()


_zygote: Zygote | None = None
_starting = threading.Lock()


def zygote() -> Zygote | None:
    """This process's zygote, started on first use; None when commands must run fresh."""
    global _zygote
    if FRESH:
        return None
    with _starting:
        if _zygote is None or _zygote.process.poll() is not None:
            _zygote = Zygote(os.environ)
        return _zygote


def run_command(
    args: list[str], env: Mapping[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """`python -m kore_sessions.cli args` with `env` in `cwd`, its output captured as text."""
    forking = zygote()
    if forking is not None and forking.takes(env):
        return forking.run(args, env, cwd, timeout)
    return run_python(["-m", MODULE, *args], env, cwd, timeout)


def run_python(
    argv: list[str], env: Mapping[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """This interpreter on `argv` (`["-c", script]`, `["-m", module, ...]`) in a fresh process,
    its output captured as text; the exit code is the caller's to check."""
    return subprocess.run(
        [sys.executable, *argv],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
