"""Goal 8 baseline: reading a study's runs the naive way, through MLflow's public API.

``search_runs`` over every page, then ``get_metric_history`` of loss and val_loss for each run:
what a hand-written report script does before it computes anything (this one computes nothing,
so it is a lower bound of such a script's time).

    python bench/baselines/naive_report.py TRACKING_URI EXPERIMENT
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    uri, name = sys.argv[1], sys.argv[2]
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(name)
    runs, token = [], None
    while True:
        page = client.search_runs([experiment.experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            break
    points = 0
    for run in runs:
        for key in ("loss", "val_loss"):
            points += len(client.get_metric_history(run.info.run_id, key))
    print("BENCH-RESULT " + json.dumps({"runs": len(runs), "points": points}), flush=True)


if __name__ == "__main__":
    main()
