"""MLflow's own tag names that nnlab writes, so the MLflow UI shows nnlab's runs in its usual places.

Importing this module never imports MLflow: the command that trains (and so names a run's source) may run
without it. ``tests/tracking`` checks each name against MLflow's constants
(``mlflow.utils.mlflow_tags``), and the experiment kind against the UI bundle MLflow ships, which is
the only place that spells it: MLflow's Python code has no constant for it.
"""

from __future__ import annotations

# On an experiment: which kind of work it holds. The UI opens an experiment of this kind on its runs,
# charts and comparisons, and a run on its overview; without it, MLflow 3 may take the experiment for a
# GenAI one and open on traces and evaluations.
EXPERIMENT_KIND = "mlflow.experimentKind"
CUSTOM_MODEL_DEVELOPMENT = "custom_model_development"

NOTE = "mlflow.note.content"  # the description of a run or an experiment (markdown), shown by the UI
SOURCE_NAME = "mlflow.source.name"  # what ran: nnlab writes the spec file
SOURCE_TYPE = "mlflow.source.type"
GIT_COMMIT = "mlflow.source.git.commit"
USER = "mlflow.user"
PARENT_RUN_ID = "mlflow.parentRunId"
DATASET_CONTEXT = "mlflow.data.context"  # on a dataset input: the split it is (train, validation, test)

# The tags of nnlab's own that MLflow has an equivalent of: a caller may still pass them, and they are
# written under MLflow's name instead.
RENAMED = {"nnlab.source": SOURCE_NAME, "nnlab.git_commit": GIT_COMMIT}

# MLflow's limits on a tag's value (``mlflow.utils.validation``)
RUN_TAG_LIMIT = 8000
EXPERIMENT_TAG_LIMIT = 20000
