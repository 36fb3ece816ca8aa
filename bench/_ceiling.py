"""Goal 3's reference: what two processes get out of this machine's two cores at all.

The same bare Keras job (no nnlab: the bench search's MLP, fitted afresh ``trials`` times on the
exported digits split) runs once in one process with 2 threads, as one sweep worker would, and
once in two processes at the same moment with 1 thread each, as two workers would. Each child
imports and warms up first, says READY, and starts its timed loop only when the driver says go;
the ratio of throughputs (2 x trials / the pair's wall time, over trials / the single's) is the
most any two-worker sweep could reach here, with nothing but training to do.

``python -m bench._ceiling loop JSON`` is the child; ``measure_ceiling`` the driver side.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench._harness import (
    VENV_PYTHON,
    BenchError,
    Ctx,
    alternate,
    bench_env,
    child_main,
    child_result,
    median,
)

READY = "READY"


def _fit_once(keras: Any, data: Any, depth: int, epochs: int, seed: int) -> None:
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((data["x_train"].shape[1],))]
    layers += [keras.layers.Dense(64, activation="relu") for _ in range(depth)]
    model = keras.Sequential([*layers, keras.layers.Dense(10)])
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  steps_per_execution=32)
    model.fit(data["x_train"], data["y_train"], batch_size=32, epochs=epochs,
              validation_data=(data["x_val"], data["y_val"]), verbose=0)
    keras.backend.clear_session()


def child_loop(args: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    from nnlab.train._env import configure_environment, keras

    configure_environment(int(args["threads"]))
    k = keras()
    data = dict(np.load(args["data"]))
    _fit_once(k, data, 2, 1, 0)  # the process's one-off costs, before the clock starts
    print(READY, flush=True)
    sys.stdin.readline()
    started = time.perf_counter()
    for trial in range(int(args["trials"])):
        _fit_once(k, data, 1 + trial % 4, int(args["epochs"]), trial)
    return {"seconds": time.perf_counter() - started}


def _together(count: int, threads: int, args: dict[str, Any]) -> float:
    """Start ``count`` children, wait until all are ready, let them go at once; the wall time until
    the last one is done."""
    env = bench_env()
    procs = [subprocess.Popen([VENV_PYTHON, "-m", "bench._ceiling", "loop", json.dumps({**args, "threads": threads})],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True) for _ in range(count)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if line.strip() != READY:
                raise BenchError(f"a ceiling child did not start (exit {proc.poll()})")
        started = time.perf_counter()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outs = [proc.communicate(timeout=1800)[0] for proc in procs]
        wall = time.perf_counter() - started
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for out in outs:
        child_result(out)  # each child must have finished its loop
    return wall


def measure_ceiling(ctx: Ctx, data: str, trials: int, epochs: int) -> dict[str, float]:
    """Median over rounds of the pair's throughput over the single's, and the median walls."""
    args = {"data": data, "trials": trials, "epochs": epochs}
    s = alternate({"one": lambda: _together(1, 2, args), "two": lambda: _together(2, 1, args)},
                  min(ctx.repeats, 3), log=ctx.log)
    ratio = median([2 * one / two for one, two in zip(s["one"], s["two"], strict=False)])
    return {"ratio": ratio, "one": median(s["one"]), "two": median(s["two"])}


if __name__ == "__main__":
    child_main({"loop": child_loop})
