"""A fork server for CPU sweep workers: TensorFlow, Keras, MLflow and Optuna imported once, workers
forked from it.

Each fresh ``python -m nnlab.sweep._worker`` spends ~5 CPU-seconds importing TensorFlow and Keras
and ~2.4 importing MLflow, its SQL store and Optuna. With two workers on two cores those imports
ran side by side with the coordinator's own, so a sweep's start-up grew with the number of workers,
and every recycled worker paid them again. The server (``python -m nnlab.sweep._forks FD``, started
by the coordinator) imports them once, then forks one child per request; a child becomes a worker
with its own stdin, output file, environment and session, exactly as a spawned one.

TensorFlow is not fork-safe once its runtime has started (thread pools, devices, the eager
context), so the server never runs an operation: it only imports, and every child starts its
runtime itself. It forks the preflight worker right after TensorFlow's import, so the preflight is
not delayed, and imports the rest once another worker is asked for (at once with two workers,
at the first recycling with one); those are forked with everything imported. GPU sweeps keep spawning fresh processes (each pinned before CUDA starts).

Protocol, over a Unix socket pair: a request is one JSON line ``{"id", "env", "early"}`` sent with
two or three descriptors (the worker's stdin, its output file, and the preflight reply pipe); the
server answers ``{"id", "pid"}`` once it has forked and ``{"pid", "rc"}`` when that child exits
(``rc`` as ``subprocess`` gives it: negative for a signal). The server exits when the socket closes;
children it leaves behind notice that their parent changed and stop after their run.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import IO, Any

from nnlab.tracking._process import process_alive

MAX_FDS = 3
TICK_S = 0.05


# ------------------------------------------------------------------------------------------------
# the server


class _Server:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.fds: list[int] = []  # received with requests whose line is not complete yet
        self.pending: list[tuple[dict[str, Any], list[int]]] = []
        self.children: set[int] = set()
        self.closed = False

    def receive(self, timeout: float) -> None:
        """Read what requests arrived within ``timeout`` into ``pending``."""
        if self.closed:
            time.sleep(timeout)
            return
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return
        data, fds, _, _ = socket.recv_fds(self.sock, 65536, MAX_FDS * 8)
        if not data:
            self.closed = True
            return
        self.buffer += data
        self.fds += fds
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            request = json.loads(line)
            count = int(request["fds"])
            self.pending.append((request, self.fds[:count]))
            self.fds = self.fds[count:]

    def fork_pending(self, *, early_only: bool = False) -> None:
        """Fork a child for each pending request (only the preflight's with ``early_only``)."""
        index = 0
        while index < len(self.pending):
            request, fds = self.pending[index]
            if early_only and not request.get("early"):
                index += 1
                continue
            del self.pending[index]
            others = [fd for _, held in self.pending for fd in held] + self.fds  # not the child's to keep
            pid = os.fork()
            if pid == 0:
                _child(request, fds, [self.sock.fileno(), *others])
            for fd in fds:
                os.close(fd)
            self.children.add(pid)
            self.send({"id": request["id"], "pid": pid})

    def reap(self) -> None:
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 1 << 8
            if done:
                self.children.discard(pid)
                self.send({"pid": pid, "rc": os.waitstatus_to_exitcode(status)})

    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            self.sock.sendall((json.dumps(message) + "\n").encode())
        except OSError:
            self.closed = True  # the coordinator is gone


def _child(request: dict[str, Any], fds: list[int], close: list[int]) -> None:
    """In the forked child: become a worker, then exit without returning into the server's loop."""
    code = 1
    try:
        os.setsid()  # its own session, as a spawned worker: a terminal's Ctrl-C reaches only the coordinator
        for fd in close:
            os.close(fd)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stdin, output, *reply = fds
        os.dup2(stdin, 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(stdin)
        os.close(output)
        env = dict(request["env"])
        env.pop("NNLAB_REPLY_FD", None)
        if reply:
            env["NNLAB_REPLY_FD"] = str(reply[0])
        os.environ.clear()
        os.environ.update(env)
        from nnlab.sweep import _worker

        code = _worker.main([])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - printed to the worker's output, as an uncaught error would be
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(sock: socket.socket) -> int:
    from nnlab.sweep._worker import _import_tracking
    from nnlab.train._env import configure_environment, keras

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopped by closing the socket, never by a signal
    server = _Server(sock)
    configure_environment()
    keras()  # TensorFlow and Keras: the preflight worker may be forked now
    imported = False
    while not (server.closed and not server.pending):
        if not imported and any(not request.get("early") for request, _ in server.pending):
            _import_tracking()  # only once a worker that needs it from here is asked for: a one-worker
            _import_worker_modules()  # sweep's only worker imports them itself, after its preflight
            imported = True
        server.fork_pending(early_only=not imported)
        server.reap()
        server.receive(TICK_S)
    return 0


def _import_worker_modules() -> None:
    """The modules a worker imports before its first run, so that children find them imported."""
    import nnlab.data  # noqa: F401
    import nnlab.spec  # noqa: F401
    import nnlab.sweep._ledger  # noqa: F401
    import nnlab.sweep._plan  # noqa: F401
    import nnlab.sweep._storage  # noqa: F401
    import nnlab.tracking._mlflow  # noqa: F401
    import nnlab.train  # noqa: F401
    from nnlab.train._env import freeze_imported

    freeze_imported()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    return serve(sock)


# ------------------------------------------------------------------------------------------------
# the coordinator's side


class ForkServer:
    """The coordinator's handle on the server; ``fork`` returns a Popen-like ``ForkedProc``."""

    def __init__(self, env: dict[str, str], output: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.popen = subprocess.Popen([sys.executable, "-m", "nnlab.sweep._forks", str(theirs.fileno())],
                                          env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                          pass_fds=(theirs.fileno(),), start_new_session=True)
        finally:
            theirs.close()
        self.sock = ours
        self.sock.setblocking(False)
        self.buffer = b""
        self.next_id = 0
        self.by_id: dict[int, ForkedProc] = {}
        self.by_pid: dict[int, ForkedProc] = {}
        self.gone = False

    @property
    def alive(self) -> bool:
        if not self.gone and self.popen.poll() is not None:
            self.pump()  # what it said before it went
            self._lost()
        return not self.gone

    def fork(self, env: dict[str, str], stdin: int, output: int, reply: int | None = None) -> ForkedProc:
        """Ask for a worker; the descriptors are sent (duplicated) and stay the caller's to close."""
        self.next_id += 1
        fds = [stdin, output] + ([reply] if reply is not None else [])
        line = json.dumps({"id": self.next_id, "env": env, "early": reply is not None, "fds": len(fds)}) + "\n"
        self.sock.setblocking(True)
        try:
            socket.send_fds(self.sock, [line.encode()], fds)
        finally:
            self.sock.setblocking(False)
        proc = ForkedProc(self)
        self.by_id[self.next_id] = proc
        return proc

    def pump(self) -> None:
        """Read what the server said: pids of new children, exit codes of finished ones."""
        while not self.gone:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            self.buffer += data
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                message = json.loads(line)
                if "id" in message:
                    proc = self.by_id.pop(message["id"])
                    proc._pid = message["pid"]
                    self.by_pid[message["pid"]] = proc
                    if proc.pending_signal is not None:
                        proc.send_signal(proc.pending_signal)
                else:
                    done = self.by_pid.pop(message["pid"], None)
                    if done is not None:
                        done.returncode = message["rc"]

    def _lost(self) -> None:
        """The server is gone: requests it never forked count as exited; forked children are watched
        by pid until they are gone (their exit codes are lost with the server)."""
        self.gone = True
        for proc in self.by_id.values():
            proc.returncode = 1
        self.by_id.clear()

    def close(self, timeout: float = 5.0) -> None:
        """Close the socket: the server exits (its children, if any, go on without it)."""
        self.pump()
        self.gone = True
        self.sock.close()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class ForkedProc:
    """A worker forked by the server, with the part of ``subprocess.Popen`` the pool uses."""

    def __init__(self, server: ForkServer) -> None:
        self.server = server
        self._pid: int | None = None
        self.returncode: int | None = None
        self.stdin: IO[bytes] | None = None
        self.pending_signal: int | None = None

    @property
    def pid(self) -> int | None:
        """The worker's pid; None while the server has not forked it yet."""
        if self._pid is None and not self.server.gone:
            self.server.pump()
        return self._pid

    def poll(self) -> int | None:
        if self.returncode is None:
            self.server.pump()
        if (self.returncode is None and self.server.gone and self._pid is not None
                and not process_alive(self._pid, "")):
            self.returncode = 1
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("nnlab worker", timeout or 0.0)
            time.sleep(TICK_S)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is not None:
            return
        pid = self.pid
        if pid is None:
            self.pending_signal = sig  # sent as soon as the server says which pid it forked
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip TensorFlow's interpreter teardown
