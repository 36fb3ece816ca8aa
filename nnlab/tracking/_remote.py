"""The tracker of ``nnlab run``, in a helper process.

Importing MLflow and opening the store take 1.5-2.5 s, TensorFlow's import 3.5-4 s; threads
cannot overlap imports (the GIL and the import lock make two threads slower than one after the
other), two processes on two cores can. So ``nnlab run`` starts this helper first
(``python -m nnlab.tracking._remote``), which imports MLflow (and matplotlib, for the learning
curve) while the command imports TensorFlow and loads the data. Every tracker call then travels
over a pipe: calls whose answer is needed (``open``, ``start_run``, ``end_run``, ...) wait for it,
and with it for every call sent before; the others (per-epoch metrics, params, artifacts,
drawing the figure) do not wait at all, and their errors are raised by the next call that waits.

Guarantees: nothing is written to the store before ``open`` (an existing embedded store is only
opened early, which writes nothing); ``open`` fails with ``FatalError`` when the store is unusable,
before any training; runs carry the pid of the command, not the helper's, so a killed command's
run is reaped as before. The helper ignores Ctrl-C and SIGTERM (the command ends its run first,
through the helper) and exits when its pipe closes, after writing everything it was sent.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
from typing import IO, Any

from nnlab.errors import FatalError
from nnlab.tracking._store import Store

TAG = "nnlab."
CLOSE_WAIT_S = 30.0


class RemoteTracker:
    """The ``Tracker`` interface, served by a helper process (see the module doc)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._unanswered = 0
        self._opened = False
        self._proc = subprocess.Popen([sys.executable, "-m", "nnlab.tracking._remote"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE)
        self._send("init", (store,), reply=False)

    # -- the pipe ----------------------------------------------------------------------------------
    def _send(self, name: str, args: tuple[Any, ...], *, reply: bool) -> None:
        stream = self._proc.stdin
        if stream is None or stream.closed:
            raise FatalError("the tracking helper is closed")
        try:
            pickle.dump((name, args, reply), stream, protocol=pickle.HIGHEST_PROTOCOL)
            stream.flush()
        except (BrokenPipeError, OSError):
            raise FatalError(self._gone()) from None
        if reply:
            self._unanswered += 1

    def _call(self, name: str, *args: Any) -> Any:
        """Send and wait for the answer (and so for everything sent before)."""
        self._send(name, args, reply=True)
        assert self._proc.stdout is not None
        value: Any = None
        while self._unanswered:
            try:
                ok, value = pickle.load(self._proc.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                self._unanswered = 0
                raise FatalError(self._gone()) from None
            self._unanswered -= 1
            if not ok:
                self._unanswered = 0
                raise FatalError(str(value))
        return value

    def _post(self, name: str, *args: Any) -> None:
        """Send without waiting; a failure is raised by the next ``_call``."""
        self._send(name, args, reply=False)

    def _gone(self) -> str:
        code = self._proc.poll()
        return f"the tracking helper process exited{f' (code {code})' if code is not None else ''}"

    # -- the Tracker interface ---------------------------------------------------------------------
    def open(self) -> None:
        """Open (creating if needed) the store and check it is usable; raises FatalError if not."""
        self._opened = True
        self._call("open")

    def reap_stale_runs(self, experiment_ids: list[str] | None = None) -> list[str]:
        return list(self._call("reap_stale_runs", experiment_ids))

    def start_run(self, experiment: str, *, run_name: str, tags: dict[str, str],
                  parent_run_id: str | None = None) -> str:
        from nnlab.tracking._process import proc_start_time

        mine = {f"{TAG}host": socket.gethostname(), f"{TAG}pid": str(os.getpid()),
                f"{TAG}proc_start": proc_start_time(os.getpid())}
        return str(self._call("start_run", experiment, run_name, {**mine, **tags}, parent_run_id))

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        self._post("log_params", run_id, {k: None if v is None else str(v) for k, v in params.items()})

    def log_inputs(self, run_id: str, inputs: list[dict[str, Any]]) -> None:
        self._post("log_inputs", run_id, inputs)

    def describe_experiment(self, name: str, text: str) -> None:
        self._post("describe_experiment", name, text)

    def set_note(self, run_id: str, text: str, replace: bool = True) -> None:
        self._post("set_note", run_id, text, replace)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int, *, heartbeat: bool = True) -> None:
        self._post("log_metrics", run_id, metrics, step, heartbeat)

    def log_epoch(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        self._post("log_epoch", run_id, metrics, step)

    def flush(self) -> None:
        self._call("flush")

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self._post("set_tags", run_id, {k: str(v) for k, v in tags.items()})

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self._post("log_text", run_id, text, name)

    def log_drawn(self, run_id: str, name: str, draw: Any, *args: Any) -> None:
        """``draw`` must be a module-level function (it is pickled by name and called in the helper)."""
        self._post("log_drawn", run_id, name, draw, *args)

    def log_artifact(self, run_id: str, path: str, artifact_path: str | None = None) -> None:
        self._post("log_artifact", run_id, str(path), artifact_path)

    def end_run(self, run_id: str, status: str) -> None:
        self._call("end_run", run_id, status)

    def close(self) -> None:
        """Close the pipe; the helper writes what is still queued and exits. Waits for it.

        Before ``open`` the helper has written nothing (it may still be importing): it is killed."""
        if not self._opened and self._proc.poll() is None:
            self._proc.kill()
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout=CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> RemoteTracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalTracker:
    """The same interface in this process (``NNLAB_TRACKING_HELPER=0``): the store opens at ``open``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tracker: Any = None

    def open(self) -> None:
        from nnlab.tracking._mlflow import Tracker

        self._tracker = Tracker(self.store)

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.flush()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or self.__dict__.get("_tracker") is None:
            raise AttributeError(name)
        return getattr(self._tracker, name)

    def __enter__(self) -> LocalTracker:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def start_tracker(store: Store) -> RemoteTracker | LocalTracker:
    """A tracker whose store opens at ``open()``; MLflow starts importing now, in a helper process
    (unless ``NNLAB_TRACKING_HELPER=0``)."""
    if os.environ.get("NNLAB_TRACKING_HELPER", "1") == "0":
        return LocalTracker(store)
    return RemoteTracker(store)


# ------------------------------------------------------------------------------------------------
# the helper process


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


def _reply(out: IO[bytes], ok: bool, value: Any) -> None:
    pickle.dump((ok, value), out, protocol=pickle.HIGHEST_PROTOCOL)
    out.flush()


def _warm_up(store: Store) -> Any:
    """Import what the run will need; open an existing embedded store (which writes nothing)."""
    from nnlab.tracking._mlflow import Tracker, _quiet_mlflow

    _quiet_mlflow()
    import mlflow  # noqa: F401
    from mlflow.store.tracking import sqlalchemy_store  # noqa: F401 - the store's own imports

    tracker = None
    if store.embedded and store.db_path.exists():
        try:
            tracker = Tracker(store)
        except FatalError:
            tracker = None  # reported by open(), which tries again
    import matplotlib.figure  # noqa: F401 - for the learning curve, drawn here at the end

    import nnlab.train._figures  # noqa: F401
    return tracker


def serve(inp: IO[bytes], out: IO[bytes]) -> int:
    from nnlab.tracking._mlflow import Tracker

    try:
        name, args, _ = pickle.load(inp)
    except (EOFError, OSError, pickle.UnpicklingError):
        return 0
    if name != "init":
        return 2
    store: Store = args[0]
    tracker = _warm_up(store)
    deferred: str | None = None  # the first error of a call nobody waited for
    try:
        while True:
            try:
                name, args, reply = pickle.load(inp)
            except (EOFError, OSError, pickle.UnpicklingError):
                return 0
            try:
                if name == "open":
                    tracker = tracker or Tracker(store)
                    value = None
                elif tracker is None:
                    raise FatalError(f"the store was not opened before {name}")
                elif name == "start_run":
                    experiment, run_name, tags, parent = args
                    value = tracker.start_run(experiment, run_name=run_name, tags=tags, parent_run_id=parent)
                elif name == "log_metrics":
                    run_id, metrics, step, heartbeat = args
                    value = tracker.log_metrics(run_id, metrics, step, heartbeat=heartbeat)
                else:
                    value = getattr(tracker, name)(*args)
            except Exception as exc:  # noqa: BLE001 - handed back to the command
                error = exc if isinstance(exc, FatalError) else f"tracking ({name}): {_one_line(exc)}"
                if reply:
                    _reply(out, False, deferred or str(error))
                    deferred = None
                elif deferred is None:
                    deferred = str(error)
                continue
            if reply:
                _reply(out, deferred is None, value if deferred is None else deferred)
                deferred = None
    finally:
        if tracker is not None:
            try:
                tracker.flush()
            except Exception:  # noqa: BLE001 - nobody is left to tell
                pass


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command ends its run through us first
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into the answers
    return serve(sys.stdin.buffer, out)


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)  # everything is written by now; skip the interpreter's slow teardown
