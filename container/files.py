"""Where a job's files live: the /opt/ml tree and the names inside the model folder, which
training writes and serving reads."""

import os

# sagemaker-training and sagemaker-inference read /opt/ml from here (outside a container, any
# folder).
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
DEFAULT_BASE_DIR = "/opt/ml"

# The model folder, packed by SageMaker as model.tar.gz.
TORCHSCRIPT_FILE = "model.pt"
STATE_DICT_FILE = "model.pth"
METRICS_FILE = "metrics.json"
MODEL_FILES = (STATE_DICT_FILE, TORCHSCRIPT_FILE)
# The checkpoint folder and the reports in the output data folder.
CHECKPOINT_FILE = "checkpoint.pth"
HISTORY_FILE = "history.json"
CURVES_PLOT = "training_curves.png"
CONFUSION_PLOT = "confusion_matrix.png"


def base_dir(environ=os.environ):
    return environ.get(BASE_DIR_ENV, DEFAULT_BASE_DIR)


def switched_on(name, environ=os.environ):
    """Whether the opt-in switch ``name`` is set to true."""
    return environ.get(name, "").lower() == "true"
