"""Every environment variable, path and media type the container reads, named once."""
import os

# sagemaker-training toolkit: where /opt/ml lives (outside a container, any folder).
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
# The function the toolkit's trainer calls instead of a user script.
TRAINING_MODULE_ENV = "SAGEMAKER_TRAINING_MODULE"
TRAINING_MODULE = "container.train:main"
DEFAULT_BASE_DIR = "/opt/ml"

# Paths and cluster layout the toolkit exports to the job (SM_* variables).
MODEL_DIR_ENV = "SM_MODEL_DIR"
OUTPUT_DATA_DIR_ENV = "SM_OUTPUT_DATA_DIR"
TRAINING_CHANNEL_ENV = "SM_CHANNEL_TRAINING"
TESTING_CHANNEL_ENV = "SM_CHANNEL_TESTING"
HOSTS_ENV = "SM_HOSTS"
CURRENT_HOST_ENV = "SM_CURRENT_HOST"
NUM_GPUS_ENV = "SM_NUM_GPUS"
NUM_CPUS_ENV = "SM_NUM_CPUS"
# Where SageMaker syncs checkpoints for spot training; /opt/ml/checkpoints by default.
CHECKPOINT_DIR_ENV = "SM_CHECKPOINT_DIR"

# Port the distributed process group listens on, on the first host.
MASTER_PORT = 29500
# How long a host waits for the first host to resolve and for its peers to join.
DISTRIBUTED_TIMEOUT_S = 300

# File names in the model and output folders.
TORCHSCRIPT_FILE = "model.pt"
STATE_DICT_FILE = "model.pth"
METRICS_FILE = "metrics.json"
CHECKPOINT_FILE = "checkpoint.pth"
CURVES_PLOT = "training_curves.png"
CONFUSION_PLOT = "confusion_matrix.png"


def base_dir():
    return os.environ.get(BASE_DIR_ENV, DEFAULT_BASE_DIR)


def default_checkpoint_dir():
    return os.environ.get(CHECKPOINT_DIR_ENV, os.path.join(base_dir(), "checkpoints"))
