"""Where a job's files live: the /opt/ml tree and the names inside the model folder, which
training writes and serving reads."""

import os
import tarfile

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


def extract_tar(archive, into):
    """Unpacks the tar ``archive`` into the folder ``into``, refusing a member that is neither a
    file nor a folder or would land outside it: tarfile's "data" filter, done by hand where the
    Python (Debian's 3.11.2, in the image) predates it."""
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
            return
        root = os.path.realpath(into)
        for member in tar.getmembers():
            target = os.path.realpath(os.path.join(root, member.name))
            if not (member.isfile() or member.isdir()) or (
                os.path.commonpath([root, target]) != root
            ):
                raise tarfile.TarError(
                    f"{archive}: {member.name!r} is not a file or folder inside the archive's root"
                )
        tar.extractall(into)
