"""Goal 5 baseline: the depth x learning-rate search with Keras Tuner's RandomSearch.

20 trials x 15 epochs, depth int 1-4, learning rate log 1e-4..1e-1, an MLP of width 64 on the
8x8 digits, Adam, batch 32; the splits are nnlab's, read from the .npz the bench exports, so both
sides validate on the same examples. Keras Tuner lives in its own folder (``pip install --target
bench/.work/kt keras-tuner``); run with ``PYTHONPATH=bench/.work/kt``.

    python bench/baselines/kt_random_search.py DATA.npz WORKDIR [--trials 20] [--epochs 15]

Prints ``BENCH-RESULT {json}``: the best trial's val_loss (Keras Tuner's score: its best epoch)
and its last epoch's, the number of trials and epochs trained, and the best trial's depth and
learning rate (``chosen``, under nnlab's key names).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("workdir")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0, help="the search's seed and the trainings' (all of them)")
    args = parser.parse_args()

    import keras
    import keras_tuner
    import numpy as np

    data = np.load(args.data)
    keras.utils.set_random_seed(args.seed)  # weights and shuffles: a round is repeatable, as nnlab's sweep is

    def build(hp):
        depth = hp.Int("depth", 1, 4)
        learning_rate = hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
        layers = [keras.Input((64,))] + [keras.layers.Dense(64, activation="relu") for _ in range(depth)]
        model = keras.Sequential(layers + [keras.layers.Dense(10)])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        return model

    tuner = keras_tuner.RandomSearch(build, objective="val_loss", max_trials=args.trials, seed=args.seed,
                                     directory=args.workdir, project_name="kt", overwrite=True)
    tuner.search(data["x_train"], data["y_train"], epochs=args.epochs, batch_size=32,
                 validation_data=(data["x_val"], data["y_val"]), verbose=0)
    trials = list(tuner.oracle.trials.values())
    last = [t.metrics.get_history("val_loss")[-1].value[0] for t in trials if t.metrics.exists("val_loss")]
    epochs = sum(len(t.metrics.get_history("val_loss")) for t in trials if t.metrics.exists("val_loss"))
    best = tuner.oracle.get_best_trials(1)[0]
    chosen = {"model.depth": int(best.hyperparameters.get("depth")),
              "train.learning_rate": float(best.hyperparameters.get("learning_rate"))}
    print("BENCH-RESULT " + json.dumps({"best_val_loss": float(best.score), "best_final_val_loss": float(min(last)),
                                        "trials": len(trials), "epochs": int(epochs), "chosen": chosen}), flush=True)


if __name__ == "__main__":
    main()
