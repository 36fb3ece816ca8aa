"""Goal 2 baseline: the bench job as a careful user writes it by hand, in plain Keras.

The 8x8 digits from scikit-learn, a seeded 60/20/20 split standardized on the training part,
an MLP 64-64 (ReLU), Adam 1e-3, batch 32, 15 epochs with validation, then the test evaluation:
the job of ``bench/specs/digits_mlp.yaml``. With ``--mlflow URI`` it also does what a careful
user does to keep the run: an MLflow run with the parameters, every epoch's metrics (a Keras
callback) and the test metrics. Without it, mlflow is never imported.

    python bench/baselines/keras_job.py [--mlflow sqlite:///path/mlflow.db] [--epochs 15]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def load_data(seed: int = 0):
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x.astype("float32")
    order = np.random.default_rng(seed).permutation(len(x))
    n_hold = round(0.2 * len(x))
    test, val, train = order[:n_hold], order[n_hold:2 * n_hold], order[2 * n_hold:]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0
    x = (x - mean) / std
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


def build_model(keras, width: int, depth: int):
    layers = [keras.Input((64,))]
    layers += [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    layers += [keras.layers.Dense(10)]
    return keras.Sequential(layers)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mlflow", metavar="URI", help="log the run to this MLflow tracking URI")
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    params = {"depth": 2, "width": 64, "learning_rate": 1e-3, "batch_size": 32, "epochs": args.epochs, "seed": 0}

    import keras

    keras.utils.set_random_seed(params["seed"])
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_data(params["seed"])
    model = build_model(keras, params["width"], params["depth"])
    model.compile(optimizer=keras.optimizers.Adam(params["learning_rate"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    callbacks = []
    if args.mlflow:
        import mlflow

        mlflow.set_tracking_uri(args.mlflow)
        mlflow.set_experiment("baseline_keras_job")
        mlflow.start_run()
        mlflow.log_params(params)

        class LogEpoch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items()}, step=epoch)

        callbacks.append(LogEpoch())
    model.fit(x_train, y_train, batch_size=params["batch_size"], epochs=params["epochs"],
              validation_data=(x_val, y_val), callbacks=callbacks, verbose=0)
    test = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
    if args.mlflow:
        mlflow.log_metrics({f"test_{k}": float(v) for k, v in test.items()})
        mlflow.end_run()
    print(f"test_accuracy {test['accuracy']:.4f}")


if __name__ == "__main__":
    main()
