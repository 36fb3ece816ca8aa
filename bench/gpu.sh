#!/usr/bin/env bash
# The GPU checks, end to end, for a machine with a GPU (a few minutes): run from the repository root as
#   bench/gpu.sh            # installs with the gpu extra first (make install GPU=1)
# Each step prints one line "ok: ..." or stops with "FAILED: ..." (exit 1). ALLOW_CPU=1 runs the same
# steps without a GPU (to check the script itself; the GPU assertions are then skipped, and say so).
set -euo pipefail
cd "$(dirname "$0")/.."
ALLOW_CPU="${ALLOW_CPU:-0}"
make install GPU="${GPU:-$([ "$ALLOW_CPU" = 1 ] && echo 0 || echo 1)}" >/dev/null
PY=.venv/bin/python
WORK=$(mktemp -d /tmp/nnlab-gpu-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export NNLAB_STORE="$WORK/store" ALLOW_CPU

step() { echo "--- $1"; }

step "TensorFlow sees the GPU"
$PY - <<'EOF'
import os, tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
if not gpus and os.environ["ALLOW_CPU"] != "1":
    raise SystemExit("FAILED: TensorFlow sees no GPU (build: %s)" % dict(tf.sysconfig.get_build_info()))
print("ok: %d GPU(s): %s" % (len(gpus), [tf.config.experimental.get_device_details(g) for g in gpus]))
EOF

step "a ci-profile sweep with 3 workers on one GPU: every run a GPU run, each worker within its share"
if [ "$ALLOW_CPU" != 1 ]; then export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"; fi
( while sleep 1; do nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits \
    >> "$WORK/memory.csv" 2>/dev/null || true; done ) &
WATCH=$!
SECONDS=0
$PY -m nnlab.cli sweep depth --profile ci --workers 3 --progress lines > "$WORK/sweep.log" 2>&1 \
  || { kill $WATCH; tail -20 "$WORK/sweep.log"; echo "FAILED: the sweep"; exit 1; }
kill $WATCH || true
echo "sweep wall time: ${SECONDS} s"
$PY - "$WORK" <<'EOF'
import csv, os, subprocess, sys
from mlflow import MlflowClient
work = sys.argv[1]
client = MlflowClient(f"sqlite:///{work}/store/mlflow.db")
exp = client.get_experiment_by_name("depth")
runs = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("nnlab.phase") in ("tune", "confirm")]
devices = {r.data.tags.get("nnlab.device") for r in runs}
print("runs:", len(runs), "devices:", devices, "jit:", {r.data.tags.get("nnlab.jit_compile") for r in runs})
if os.environ["ALLOW_CPU"] != "1" and devices != {"gpu:1"}:
    raise SystemExit(f"FAILED: runs not all on one GPU: {devices}")
total = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits", "-i", "0"],
                       capture_output=True, text=True).stdout.strip()
if total and os.path.exists(f"{work}/memory.csv"):
    used = [int(row[1]) for row in csv.reader(open(f"{work}/memory.csv")) if len(row) == 2 and row[1].strip().isdigit()]
    share = 0.9 * int(total.splitlines()[0]) / 3
    print(f"largest worker: {max(used, default=0)} MiB of a share of {share:.0f} MiB")
    if used and max(used) > share * 1.05:
        raise SystemExit("FAILED: a worker held more than its share of the GPU's memory")
print("ok: sweep")
EOF

step "mixed precision: gradient diagnostics agree with float32 on the same weights"
$PY - <<'EOF'
from nnlab.spec import Spec
from nnlab.train import prepare
from nnlab.train._callbacks import Diagnostics
from nnlab.train._env import keras
text = """
name: gpumixed
data: {dataset: digits_flat, train_size: 200}
model: {family: mlp, depth: 12, width: 16, activation: sigmoid}
train: {epochs: 1}
"""
import pathlib, tempfile
path = pathlib.Path(tempfile.mkdtemp()) / "s.yaml"
path.write_text(text)
found = {}
for precision in ("float32", "mixed_float16", "mixed_bfloat16"):
    p = prepare(Spec.from_yaml(str(path), [f"train.precision={precision}"]))
    probe = Diagnostics(p.data.x_train[:64], p.data.y_train[:64], keras().losses.SparseCategoricalCrossentropy(), "sigmoid")
    probe.set_model(p.model)
    found[precision] = probe.compute()
ref = found["float32"]["grad_norm/hidden_01"]
for precision in ("mixed_float16", "mixed_bfloat16"):
    got = found[precision]["grad_norm/hidden_01"]
    print(f"{precision}: first-layer gradient {got:.3e} vs float32 {ref:.3e}")
    if abs(got - ref) > 1e-3 * ref:
        raise SystemExit("FAILED: diagnostics under mixed precision differ from float32 by more than 0.1%")
print("ok: mixed precision diagnostics")
EOF

step "XLA: train.jit_compile auto vs false, and same-seed repeatability with and without determinism"
$PY - <<'EOF'
import pathlib, subprocess, sys, tempfile, time
text = """
name: gpurepeat
data: {dataset: digits, train_size: 1000}
model: {family: cnn, depth: 2, width: 16, dropout: 0.1}
train: {epochs: 3, seed: 7}
"""
path = pathlib.Path(tempfile.mkdtemp()) / "s.yaml"
path.write_text(text)
def run(*overrides):
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "nnlab.cli", "run", str(path), *overrides], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit("FAILED: " + out.stderr[-500:])
    return time.monotonic() - started, [line for line in out.stdout.splitlines() if "val_loss" in line][-1]
for jit in ("auto", "false"):
    print(f"jit_compile={jit}: {run(f'train.jit_compile={jit}')[0]:.1f} s")
for det in ("false", "true"):
    a, b = run(f"train.deterministic={det}"), run(f"train.deterministic={det}")
    print(f"deterministic={det}: {a[0]:.1f} s / {b[0]:.1f} s, same numbers: {a[1] == b[1]}")
    if det == "true" and a[1] != b[1]:
        raise SystemExit("FAILED: deterministic runs differ")
print("ok: XLA and determinism")
EOF
step "cohorts: runs per second with sweep.cohort auto vs 1 (the depth study's quick cells, many repeats each)"
$PY - <<'EOF'
import os, subprocess, sys, time
SEEDS = os.environ.get("COHORT_SEEDS", "32" if os.environ["ALLOW_CPU"] != "1" else "3")
def sweep(cohort, precision):
    store = f"{os.environ['NNLAB_STORE']}-cohort-{cohort}-{precision}"
    env = {**os.environ, "NNLAB_STORE": store}
    args = [sys.executable, "-m", "nnlab.cli", "sweep", "depth", f"sweep.seeds={SEEDS}", f"sweep.cohort={cohort}",
            f"train.precision={precision}", "--profile", "quick", "--workers", "auto", "--progress", "lines"]
    started = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    if out.returncode:
        raise SystemExit(f"FAILED: cohort={cohort} precision={precision}: " + (out.stdout + out.stderr)[-800:])
    runs = 4 * int(SEEDS)
    print(f"cohort={cohort} precision={precision}: {runs} runs in {seconds:.1f} s = {runs / seconds:.2f} runs/s")
    return runs / seconds
found = {(c, p): sweep(c, p) for p in ("float32", "mixed_float16") for c in ("1", "auto")}
ratio = found[("auto", "float32")] / found[("1", "float32")]
mixed = found[("auto", "mixed_float16")] / found[("1", "mixed_float16")]
print(f"cohort auto / 1, float32: {ratio:.2f}x runs per second (goal on a GPU: >= 10x); mixed_float16, whose "
      f"runs train alone (loss scaling is per run): {mixed:.2f}x")
print("ok: cohorts")
EOF

echo "all GPU checks passed"
