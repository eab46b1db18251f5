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


def switched_on(name, environ=os.environ):
    """Whether the opt-in switch ``name`` is set to true."""
    return environ.get(name, "").lower() == "true"

# ---------------------------------------------------------------- serving
# sagemaker-inference toolkit settings (read by its Environment) that serve documents.
BIND_TO_PORT_ENV = "SAGEMAKER_BIND_TO_PORT"
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
TIMEOUT_ENV = "SAGEMAKER_MODEL_SERVER_TIMEOUT"
MAX_PAYLOAD_ENV = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
VMARGS_ENV = "SAGEMAKER_MODEL_SERVER_VMARGS"
# Opt-in: pip install /opt/ml/model/code/requirements.txt at start-up (off: archives are data).
INSTALL_REQUIREMENTS_ENV = "SAGEMAKER_INSTALL_MODEL_REQUIREMENTS"
# Opt-in: the model server's per-request log lines (access log, backend time) on stdout.
ACCESS_LOG_ENV = "SAGEMAKER_ACCESS_LOG"
# What `serve` passes to the server for it; container/log4j2.xml reads it.
ACCESS_LOG_LEVEL_ENV = "MNIST_ACCESS_LOG_LEVEL"
# Where the model server writes its configuration (the toolkit's choice).
MMS_CONFIG_FILE = "/etc/sagemaker-mms.properties"
HANDLER = "container.handler:handle"
# File a worker writes its reason into when the model cannot be loaded; `serve` then stops.
LOAD_FAILURE_FILE_ENV = "MNIST_SERVE_LOAD_FAILURE_FILE"
DEFAULT_PORT = 8080
DEFAULT_MAX_PAYLOAD_MB = 6  # SageMaker real-time endpoints accept 6 MB
# An npz member may expand to this much (zip bombs): about 342,000 one-byte images.
MAX_NPZ_ARRAY_BYTES = 256 * 2**20
# The fewest bytes one image takes in a request: 784 one-byte pixels, as uint8 npy.
MIN_IMAGE_BYTES = 28 * 28
# The most bytes any response type spends on one image (a JSON record takes about 140).
MAX_ANSWER_BYTES_PER_IMAGE = 200

# Media types, in and out.
JSON = "application/json"
JSONLINES = "application/jsonlines"
NPY = "application/x-npy"
NPZ = "application/x-npz"
CSV = "text/csv"
PNG = "image/png"
JPEG = "image/jpeg"
X_IMAGE = "application/x-image"
ANY = "*/*"
