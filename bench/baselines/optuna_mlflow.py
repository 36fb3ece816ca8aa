"""Goal 5 reference: the search as a hand-written Optuna (TPE + median pruning) + MLflow script.

The same space, data, model and budget as ``kt_random_search.py``; every trial is an MLflow run
with its params and per-epoch metrics; a Keras callback reports val_loss to Optuna and prunes.

    python bench/baselines/optuna_mlflow.py DATA.npz TRACKING_URI [--trials 20] [--epochs 15]

Prints ``BENCH-RESULT {json}``: the best trial's final val_loss, its best epoch's, trials and
epochs trained.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("tracking_uri")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()

    import keras
    import mlflow
    import numpy as np
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = np.load(args.data)
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment("optuna_script")
    epochs_trained = []
    best_epoch_values = {}

    def objective(trial):
        depth = trial.suggest_int("depth", 1, 4)
        learning_rate = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
        keras.backend.clear_session()
        layers = [keras.Input((64,))] + [keras.layers.Dense(64, activation="relu") for _ in range(depth)]
        model = keras.Sequential(layers + [keras.layers.Dense(10)])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        seen = []

        class Report(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = {k: float(v) for k, v in (logs or {}).items()}
                mlflow.log_metrics(logs, step=epoch)
                seen.append(logs["val_loss"])
                trial.report(logs["val_loss"], epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned()

        with mlflow.start_run(run_name=f"trial {trial.number}"):
            mlflow.log_params(trial.params)
            try:
                model.fit(data["x_train"], data["y_train"], batch_size=32, epochs=args.epochs,
                          validation_data=(data["x_val"], data["y_val"]), callbacks=[Report()], verbose=0)
            finally:
                epochs_trained.append(len(seen))
                best_epoch_values[trial.number] = min(seen) if seen else float("inf")
        return seen[-1]

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5))
    study.optimize(objective, n_trials=args.trials)
    print("BENCH-RESULT " + json.dumps({"best_final_val_loss": float(study.best_value),
                                        "best_val_loss": float(min(best_epoch_values.values())),
                                        "trials": len(study.trials), "epochs": int(sum(epochs_trained))}), flush=True)


if __name__ == "__main__":
    main()
