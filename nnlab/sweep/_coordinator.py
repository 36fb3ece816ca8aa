"""``nnlab sweep``: check everything, open the stores, then launch, watch and recycle workers.

The coordinator never trains and never imports TensorFlow. It validates the spec and every cell,
starts the worker processes at once and has the first one run the preflight — the first cell's
data and model — before any store is written. The workers come from ``multiprocessing`` (see
``WorkerPool``) and import while the coordinator goes on. Then it
connects to both stores, creates or resumes the sweep's studies and parent run, and hands the
workers their job. It polls the Optuna storage for progress, re-queues the slots of workers that
died, replaces workers that finished their ``--recycle`` quota, forwards Ctrl-C, and closes the
parent run when every slot is done.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnlab.errors import FatalError, SpecError, StoreFailed

POLL_S = 1.0
RECONCILE_EVERY_S = 10.0
STOP_GRACE_S = 30.0
MAX_CRASHES = 3  # worker deaths in a row without a finished run before the sweep gives up
AUTO_CPU_WORKERS = 4
EXIT_OK, EXIT_INTERRUPTED = 0, 130
WORKER_SETUP, WORKER_STORE_FAILED, WORKER_DEVICE_FAULT = 3, 4, 5  # worker exit codes: could not start; a store
# failed under it; the accelerator failed under its run (out of memory, a CUDA error)


@dataclass
class SweepOptions:
    spec: str
    overrides: list[str] = field(default_factory=list)
    profile: str | None = None
    workers: int | str | None = None  # None = sweep.workers from the spec
    storage: str | None = None
    tracking_uri: str | None = None
    restart: bool = False
    recycle: int = 100
    progress: str = "auto"  # auto, live, lines


# ------------------------------------------------------------------------------------------------
# workers and devices


def visible_gpus() -> list[str]:
    """Devices a worker may be pinned to: $CUDA_VISIBLE_DEVICES's entries if it is set, else every GPU
    ``nvidia-smi -L`` lists, by UUID (CUDA may number GPUs in another order than nvidia-smi does), and a
    GPU split into MIG instances by its instances' UUIDs (a process uses one MIG instance)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return []
    devices: list[str] = []
    split: set[str] = set()  # GPUs whose MIG instances replace them
    gpu = ""
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        uuid = re.search(r"\(UUID: ((?:GPU|MIG)-[^)\s]+)\)", line)
        if line.startswith("GPU "):
            gpu = uuid.group(1) if uuid else line.split(":", 1)[0].split()[1]  # no UUID shown: its index
            devices.append(gpu)
        elif line.lstrip().startswith("MIG ") and uuid and gpu:
            split.add(gpu)
            devices.append(uuid.group(1))
    return [d for d in devices if d not in split]


def gpu_memory_mb() -> dict[str, int]:
    """Each GPU's memory in MiB, by its index and by its UUID, as ``nvidia-smi`` reports it ({} without it)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,uuid,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.SubprocessError):
        return {}
    found = {}
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        parts = [part.strip() for part in line.split(",")]
        if len(parts) == 3 and parts[2].isdigit():
            found[parts[0]] = found[parts[1]] = int(parts[2])
    return found


GPU_SHARE = 0.9  # of a GPU's memory, split among the workers that share it (the rest: CUDA's own use)


def resolve_workers(value: int | str | None, default: int | str, gpus: list[str]) -> int:
    """``auto``: one per visible GPU; without GPUs, min(CPU cores, 4)."""
    value = default if value is None else value
    if value == "auto":
        return len(gpus) if gpus else max(1, min(os.cpu_count() or 1, AUTO_CPU_WORKERS))
    return max(1, int(value))


def threads_per_worker(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, workers))


@dataclass
class _Proc:
    index: int
    process: Any  # a multiprocessing Process
    conn: Any  # the coordinator's end of its pipe
    early: str  # what it printed before it had a job: a temporary file, removed when it is reaped
    log_path: Path | None = None  # the worker's log, once it has a job
    released: bool = False
    discarded: bool = False  # stopped before it got a job: not a worker death
    text: str | None = None  # its early output, read when it was reaped

    def output(self) -> str:
        path = self.log_path or Path(self.early)
        if self.text is not None and self.log_path is None:
            return self.text
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 6) -> str:
        return " | ".join(_useful(self.output())[-lines:])

    def last_error(self) -> str:
        for line in reversed(_useful(self.output())):
            if not line.startswith(" "):
                return line.strip()
        return ""


class WorkerPool:
    """Worker processes from ``multiprocessing``: forked on the CPU from its forkserver, which imports
    TensorFlow, Keras, MLflow and Optuna once (``nnlab.sweep._preload``; it never starts TensorFlow's
    runtime, which is not fork-safe); spawned with GPUs (each pinned before CUDA starts) or with
    ``NNLAB_WORKER_START=spawn``. Not ``ProcessPoolExecutor``: one worker killed would break the whole
    pool and end the others' runs.

    Workers are started first and handed their job later: ``prestart`` lets them import while the
    coordinator still checks and opens the stores, and they write nothing anywhere until ``release``;
    each runs in its own session, so a terminal's Ctrl-C reaches only the coordinator (which forwards
    it once).
    """

    def __init__(self, *, size: int, gpus: list[str], log_dir: Path, log_name: str, env: dict[str, str]) -> None:
        self.job: Any = None  # the WorkerJob, once the sweep is open; each worker gets a copy with its index
        self.log_name = log_name
        self.size = size
        self.gpus = gpus
        self.log_dir = log_dir
        self.env = env
        self.procs: dict[int, _Proc] = {}
        self.status_dir: Path | None = None  # set for a live display: where workers say what they train
        self._starting: threading.Thread | None = None
        self.capacity = size  # workers kept running: fewer after repeated accelerator faults
        self._gpu_memory: dict[str, int] | None = None

    def worker_env(self, index: int) -> dict[str, str]:
        """A fair share of the CPU threads; with GPUs, worker ``index`` sees only GPU ``index`` mod n, and
        where several workers share a GPU each may use an equal share of its memory; with a live display,
        the file its runs write their epochs to."""
        from nnlab.train._env import GPU_MEMORY_ENV
        from nnlab.train._runner import WORKER_STATUS_ENV

        env = dict(self.env)
        env["NNLAB_THREADS"] = str(threads_per_worker(self.size))
        env["PYTHONUNBUFFERED"] = "1"
        env.pop(WORKER_STATUS_ENV, None)
        if self.status_dir is not None:
            env[WORKER_STATUS_ENV] = str(self.status_path(index))
        env.pop(GPU_MEMORY_ENV, None)
        if self.gpus:
            gpu = self.gpus[index % len(self.gpus)]
            env["CUDA_VISIBLE_DEVICES"] = gpu
            sharing = len(range(index % len(self.gpus), self.size, len(self.gpus)))
            if sharing > 1:
                if self._gpu_memory is None:
                    self._gpu_memory = gpu_memory_mb()
                if gpu in self._gpu_memory:
                    env[GPU_MEMORY_ENV] = str(int(self._gpu_memory[gpu] * GPU_SHARE // sharing))
        return env

    def start_method(self) -> str:
        return "spawn" if self.gpus or os.environ.get("NNLAB_WORKER_START") == "spawn" else "forkserver"

    def _spawn(self, index: int) -> _Proc:
        import multiprocessing
        import tempfile

        from nnlab.sweep._worker import serve

        method = self.start_method()
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(["nnlab.sweep._preload"])
        fd, early = tempfile.mkstemp(prefix=f"nnlab-worker{index}-", suffix=".log")
        os.close(fd)
        ours, theirs = ctx.Pipe()
        process = ctx.Process(target=serve, args=(theirs, self.worker_env(index), early),  # type: ignore[attr-defined]
                              name=f"nnlab-worker{index}")
        process.start()
        theirs.close()
        proc = _Proc(index, process, ours, early)
        self.procs[index] = proc
        return proc

    def prestart(self) -> None:
        """Start every worker, from a thread: the first start waits for the forkserver's imports."""
        def start_all() -> None:
            for index in range(self.size):
                self._spawn(index)

        self._starting = threading.Thread(target=start_all, name="nnlab-start-workers", daemon=True)
        self._starting.start()

    def _started(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None

    def preflight(self, request: dict[str, Any]) -> None:
        """Worker 0 loads the first cell's data and builds its model, writing nothing; its SpecError
        becomes ours. The coordinator itself never imports TensorFlow."""
        self._started()
        proc = self.procs[0]
        try:
            proc.conn.send({"preflight": request})
            while not proc.conn.poll(0.5):
                if proc.process.exitcode is not None:
                    raise EOFError
            answer = proc.conn.recv()
        except (EOFError, OSError):
            proc.process.join(5)
            raise FatalError(f"the first worker died before its preflight (exit {proc.process.exitcode}): "
                             f"{proc.tail(3)}") from None
        if answer.get("error") == "spec":
            raise SpecError(answer["message"])
        if answer.get("error"):
            raise FatalError(answer["message"])

    def release(self, index: int) -> None:
        """Hand worker ``index`` its job (starting it first if it is not waiting)."""
        from dataclasses import replace

        self._started()
        proc = self.procs.get(index) or self._spawn(index)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{self.log_name}.worker{index}.log"
        try:
            proc.conn.send(replace(self.job, worker=index, log=str(log_path)))
        except OSError:
            pass  # it died meanwhile: reaped and reported like any other worker
        proc.conn.close()
        proc.released = True
        proc.log_path = log_path

    start = release

    def discard_waiting(self, keep: int = 0) -> None:
        """Tell the workers without a job beyond the first ``keep`` that they are not needed."""
        self._started()
        for proc in [p for p in self.procs.values() if not p.released][keep:]:
            proc.released = proc.discarded = True
            with contextlib.suppress(OSError):
                proc.conn.send(None)
            proc.conn.close()

    def waiting(self) -> list[int]:
        return [p.index for p in self.procs.values() if not p.released]

    def status_path(self, index: int) -> Path:
        assert self.status_dir is not None
        return self.status_dir / f"worker{index}.json"

    def statuses(self) -> dict[int, dict[str, Any]]:
        """What each working worker trains now, by index (see ``nnlab.train._callbacks.WorkerStatus``)."""
        from nnlab.sweep._progress import read_status

        if self.status_dir is None:
            return {}
        out = {}
        for index, proc in self.procs.items():
            status = read_status(self.status_path(index)) if proc.released and not proc.discarded else None
            if status is not None and status.get("pid") == proc.process.pid:
                out[index] = status
        return out

    def reap(self) -> list[tuple[_Proc, int]]:
        """The workers that exited since the last call, with their exit codes."""
        out = []
        for index, proc in list(self.procs.items()):
            rc = proc.process.exitcode
            if rc is None:
                continue
            del self.procs[index]
            proc.process.join()
            proc.text = proc.output()
            with contextlib.suppress(OSError):
                os.unlink(proc.early)
            if not proc.discarded:
                out.append((proc, rc))
        return out

    def close(self) -> None:
        """Reap the discarded workers."""
        for proc in list(self.procs.values()):
            if proc.discarded:
                proc.process.join(5)
        self.reap()

    def shutdown(self) -> None:
        """Remove what workers left behind (their early output files)."""
        self._started()
        for proc in self.procs.values():
            with contextlib.suppress(OSError):
                os.unlink(proc.early)

    @property
    def alive(self) -> int:
        return len(self.procs)

    def free_slots(self) -> list[int]:
        return [i for i in range(self.size) if i not in self.procs]

    def signal_all(self, sig: int) -> None:
        self.discard_waiting()
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(proc.process.pid, sig)

    def wait_all(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.procs and time.monotonic() < deadline:
            self.reap()
            time.sleep(0.2)
        return not self.procs

    def kill_all(self) -> None:
        self.signal_all(signal.SIGKILL)
        self.wait_all(10)


def _useful(text: str) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip() and not line.startswith("---")]


# ------------------------------------------------------------------------------------------------
# the sweep


def _warm_tracking() -> None:
    from nnlab.tracking._mlflow import _quiet_mlflow
    from nnlab.tracking._template import ensure_template

    try:
        _quiet_mlflow()
        template = ensure_template()
        if template is not None:  # opening it (read only) imports what opening the real store needs
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            SqlAlchemyStore(f"sqlite:///{template}", template.parent.as_uri()).engine.dispose()
    except Exception:  # noqa: BLE001 - only a head start: the tracker does it all again if needed
        pass


def _tracker(store: Any, attempts: int = 3) -> Any:
    """The MLflow tracker; a database being created by another machine's sweep at this very moment
    (concurrent schema migrations) is retried briefly."""
    from nnlab.tracking._mlflow import Tracker

    for attempt in range(attempts):
        try:
            return Tracker(store)
        except FatalError:
            if store.embedded or store.tracking_uri.startswith("http") or attempt == attempts - 1:
                raise
            time.sleep(2.0 + attempt * 2.0)
    raise AssertionError("unreachable")


def run_sweep(opts: SweepOptions) -> int:
    with ExitStack() as cleanup:  # workers' temporary files go however the sweep ends
        return _run_sweep(opts, cleanup)


def _run_sweep(opts: SweepOptions, cleanup: ExitStack) -> int:
    from rich.console import Console

    from nnlab.spec import Spec
    from nnlab.spec._load import resolve_spec_path
    from nnlab.sweep._ledger import Ledger, end_parent
    from nnlab.sweep._plan import build_plan
    from nnlab.sweep._progress import is_live, make_display, print_summary
    from nnlab.sweep._storage import open_existing_journal, open_storage, probe, resolve_target
    from nnlab.sweep._worker import WorkerJob
    from nnlab.tracking import resolve_store

    console = Console(soft_wrap=True)  # log lines stay whole in files and pipes
    if not console.is_terminal:
        console = Console(soft_wrap=True, width=160)  # and so do table rows
    spec = Spec.from_yaml(opts.spec, opts.overrides, opts.profile)
    plan = build_plan(spec, opts.profile)
    store = resolve_store(opts.tracking_uri)
    target = resolve_target(store, opts.storage)
    gpus = visible_gpus()
    size = max(1, min(resolve_workers(opts.workers, spec.sweep.workers, gpus), plan.total_runs))
    safe = "".join(c if c.isalnum() or c in "._-@" else "_" for c in plan.sweep_id)
    pool = WorkerPool(size=size, gpus=gpus, log_dir=store.root / "logs", log_name=safe, env=dict(os.environ))
    cleanup.callback(pool.shutdown)
    if is_live(console, opts.progress):
        import shutil
        import tempfile

        pool.status_dir = Path(tempfile.mkdtemp(prefix="nnlab-sweep-status-"))
        cleanup.callback(shutil.rmtree, pool.status_dir, True)
    # fail fast, before the preflight, on an unreachable storage or a changed spec (both read only)
    probe(target)
    storage = open_existing_journal(target)
    if storage is not None and not opts.restart:
        ledger = Ledger(plan, storage)
        ledger.check_existing()
        if ledger.exists() and ledger.snapshot().finished:
            return _already_done(plan, ledger, store, console, opts)  # no training, so no preflight
    pool.prestart()  # workers import TensorFlow meanwhile; they touch nothing until they get a job
    # while worker 0 runs the preflight, this process imports MLflow and makes sure the migrated empty
    # database a new store is copied from exists (in the cache folder, not in any store)
    warm = threading.Thread(target=_warm_tracking, name="nnlab-warm-tracking", daemon=True)
    warm.start()
    try:
        try:
            pool.preflight({"spec": opts.spec, "overrides": list(opts.overrides), "profile": opts.profile,
                            "gpus": gpus})
        finally:
            warm.join()
        if storage is None and not target.embedded:
            storage = open_storage(target)  # creates the tables of a new database
        tracker = _tracker(store)
        storage = storage or open_storage(target)
        if target.shared and store.embedded:
            console.print(f"note: the Optuna storage {target.shown} is shared, but runs go to the local MLflow "
                          f"store {store.root}; give --tracking-uri so every machine logs to one place", markup=False)
        ledger = Ledger(plan, storage)
        parent = ledger.open(tracker, restart=opts.restart)
        if spec.description.strip():  # where MLflow shows descriptions: the experiment and the sweep's run
            tracker.describe_experiment(spec.name, spec.description)
            tracker.set_note(parent, spec.description.strip(), replace=False)  # a report's claims stay
        ledger.reconcile(tracker, parent)
        snapshot = ledger.snapshot()
        _check_failed(plan, snapshot, tracker, parent)
    except BaseException:
        pool.discard_waiting()
        pool.close()
        raise

    sweep_line = (f"sweep {plan.sweep_id}: {len(plan.cells)} cells x ({plan.trials} trials + {plan.seeds} seeds) = "
                  f"{plan.total_runs} runs; {snapshot.done} done")
    if snapshot.finished:
        pool.discard_waiting()
        pool.close()
        console.print(sweep_line + " - nothing left to run", markup=False)
        end_parent(tracker, parent, "completed")
        print_summary(plan, snapshot, console, parent=parent, tracking_uri=store.tracking_uri,
                      storage=storage.shown, spec_arg=opts.spec)
        return EXIT_OK

    active = max(1, min(size, snapshot.total - snapshot.done))
    pool.discard_waiting(keep=active)
    pool.close()
    threads = threads_per_worker(size)
    device = f", pinned to GPUs {', '.join(gpus)}" if gpus else ""
    console.print(f"{sweep_line}; {active} worker{'s' if active > 1 else ''} x {threads} "
                  f"thread{'s' if threads > 1 else ''}{device}", markup=False)
    pool.job = WorkerJob(spec=str(resolve_spec_path(opts.spec).resolve()), overrides=list(opts.overrides),
                         profile=opts.profile, storage=opts.storage, tracking_uri=store.tracking_uri,
                         store_root=str(store.root.resolve()), sweep_hash=plan.sweep_hash, parent_run_id=parent,
                         max_runs=max(1, opts.recycle), workers=active)
    display = make_display(plan, console, opts.progress, workers=active)
    stop = _StopFlag()  # Ctrl-C/SIGTERM are acted on between polls, never inside a store write
    previous = (signal.signal(signal.SIGINT, stop.set), signal.signal(signal.SIGTERM, stop.set))
    try:
        for index in range(active):
            pool.release(index)
        display.start(snapshot)
        snapshot = _watch(plan, ledger, tracker, pool, display, snapshot, stop)
    except KeyboardInterrupt:
        display.stop()
        console.print("stopping: asking workers to end their runs (Ctrl-C again is safe) ...", markup=False)
        _stop_workers(pool, tracker, ledger)
        done = ledger.snapshot()
        if not done.running:  # else other machines still work on this sweep: the parent stays theirs
            end_parent(tracker, parent, "interrupted")
        console.print(f"interrupted with {done.done}/{done.total} runs done; nothing is left running here. Resume "
                      f"with the same command: nnlab sweep {_shell_args(opts)}", markup=False)
        return EXIT_INTERRUPTED
    except BaseException as exc:
        display.stop()
        _stop_workers(pool, tracker, ledger)
        if isinstance(exc, StoreFailed):  # resumable: the parent run is interrupted, not failed
            try:
                end_parent(tracker, parent, "interrupted")
            except FatalError:
                pass
        raise
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    display.stop()
    end_parent(tracker, parent, "completed")
    print_summary(plan, snapshot, console, parent=parent, tracking_uri=store.tracking_uri, storage=storage.shown,
                  spec_arg=opts.spec)
    if not pool.wait_all(STOP_GRACE_S):  # idle workers see that nothing is left and exit by themselves
        pool.kill_all()
    return EXIT_OK


def _already_done(plan: Any, ledger: Any, store: Any, console: Any, opts: SweepOptions) -> int:
    from nnlab.sweep._ledger import PARENT_ATTR, end_parent
    from nnlab.sweep._progress import print_summary

    snapshot = ledger.snapshot()
    parent = str(ledger.index_attrs().get(PARENT_ATTR, ""))
    tracker = _tracker(store)
    try:
        status = tracker.client.get_run(parent).info.status if parent else "FINISHED"
    except Exception:  # noqa: BLE001 - the parent is in another tracking store
        status = "FINISHED"
    if status != "FINISHED":
        end_parent(tracker, parent, "completed")  # the last run finished, its coordinator did not
    console.print(f"sweep {plan.sweep_id}: {len(plan.cells)} cells x ({plan.trials} trials + {plan.seeds} seeds) = "
                  f"{plan.total_runs} runs; {snapshot.done} done - nothing left to run", markup=False)
    print_summary(plan, snapshot, console, parent=parent, tracking_uri=store.tracking_uri,
                  storage=ledger.storage.shown, spec_arg=opts.spec)
    return EXIT_OK


class _StopFlag:
    def __init__(self) -> None:
        self.requested = False

    def set(self, signum: int, frame: Any) -> None:
        self.requested = True


def _shell_args(opts: SweepOptions) -> str:
    import shlex

    parts = [opts.spec, *opts.overrides]
    for flag, value in (("--profile", opts.profile), ("--workers", opts.workers), ("--storage", opts.storage),
                        ("--tracking-uri", opts.tracking_uri)):
        if value is not None:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _check_failed(plan: Any, snapshot: Any, tracker: Any, parent: str) -> None:
    from nnlab.sweep._ledger import end_parent

    failed = snapshot.failed_cells()
    if not failed:
        return
    cell = failed[0]
    what = "tune trials" if plan.trials else "runs"
    end_parent(tracker, parent, "failed")
    others = f" ({len(failed) - 1} other cells too)" if len(failed) > 1 else ""
    raise FatalError(f"every one of the {len(cell.tune or cell.confirm)} {what} of cell {cell.cell.id} failed"
                     f"{others}; first error: {cell.first_error}")


def _watch(plan: Any, ledger: Any, tracker: Any, pool: WorkerPool, display: Any, snapshot: Any,
           stop: _StopFlag) -> Any:
    crashes, done_at_crash = 0, -1  # worker deaths since the last finished run
    faults = 0  # accelerator faults since the last finished run
    last_reconcile = time.monotonic()
    while True:
        time.sleep(POLL_S)
        if stop.requested:
            raise KeyboardInterrupt
        exited = pool.reap()
        died = [(proc, rc) for proc, rc in exited if rc not in (0, EXIT_INTERRUPTED)]
        for proc, rc in exited:
            if rc == WORKER_SETUP:
                raise FatalError(f"worker {proc.index} could not start: {proc.last_error()}")
            if rc == WORKER_STORE_FAILED:  # its one line says what failed and how to go on
                raise StoreFailed(re.sub(r"^nnlab worker \d+: ", "", proc.last_error()))
            if rc != 0 and not proc.released:
                raise FatalError(f"worker {proc.index} died while starting (exit {rc}): {proc.tail(3)}")
        if died or time.monotonic() - last_reconcile > RECONCILE_EVERY_S:
            ledger.reconcile(tracker, pool.job.parent_run_id)  # the workers that died: their slots go back
            last_reconcile = time.monotonic()
        snapshot = ledger.snapshot()
        display.update(snapshot, pool.statuses())
        _check_failed(plan, snapshot, tracker, pool.job.parent_run_id)
        if snapshot.finished:
            return snapshot
        if died:
            if snapshot.done > done_at_crash:
                crashes = faults = 0
            crashes += len(died)
            for proc, rc in died:
                if rc == WORKER_DEVICE_FAULT:  # its slot is queued again; a repeat runs fewer workers at once
                    faults += 1
                    display.note(f"worker {proc.index}: {re.sub(r'^nnlab worker [0-9]+: ', '', proc.last_error())}")
                    if faults > 1 and pool.capacity > 1:
                        pool.capacity -= 1
                        display.note(f"the accelerator failed again: going on with {pool.capacity} worker"
                                     f"{'s' if pool.capacity > 1 else ''} at once")
            done_at_crash = snapshot.done
            if crashes > MAX_CRASHES:
                proc, rc = died[-1]
                raise FatalError(f"workers keep dying (last: worker {proc.index}, exit {rc}); see {proc.log_path}: "
                                 f"{proc.tail(3)}")
        waiting = snapshot.waiting()
        for index in [i for i in pool.free_slots() if i < pool.capacity][:waiting]:
            pool.start(index)  # a recycled or dead worker's replacement, while work is queued


def _stop_workers(pool: WorkerPool, tracker: Any, ledger: Any) -> None:
    """SIGINT to each worker (it ends its run KILLED and re-queues the slot), then SIGKILL stragglers;
    finally mark anything they left behind."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    try:
        pool.signal_all(signal.SIGINT)
        if not pool.wait_all(STOP_GRACE_S):
            pool.kill_all()
        try:
            ledger.reconcile(tracker, pool.job.parent_run_id)
        except Exception:  # noqa: BLE001 - best effort: the next sweep start repairs the same way
            pass
    finally:
        signal.signal(signal.SIGINT, previous)
