"""What the sagemaker-training toolkit tells a job through the environment, named once."""

# The function the toolkit's trainer calls instead of a user script.
TRAINING_MODULE_ENV = "SAGEMAKER_TRAINING_MODULE"
TRAINING_MODULE = "container.training.entry:main"

# Paths and cluster layout (SM_* variables).
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
