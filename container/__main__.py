"""The image's commands: `python -m container train` (and `serve`, once it exists).

SageMaker runs `docker run IMAGE train`; the image's `train` is this module. It wraps the
sagemaker-training toolkit's own trainer with one fix: the toolkit writes its failure file into
/opt/ml/output and, when that folder is missing, fails to write it and exits 0, so a broken job
(no inputdataconfig.json, say) looks like a success. The folder is made first.
"""
import os
import sys

from container import settings

USAGE = "usage: python -m container train"


def train():
    os.makedirs(os.path.join(settings.base_dir(), "output"), exist_ok=True)
    os.environ.setdefault(settings.TRAINING_MODULE_ENV, settings.TRAINING_MODULE)
    from sagemaker_training import trainer  # reads SAGEMAKER_BASE_DIR when imported
    trainer.train()


COMMANDS = {"train": train}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        sys.exit(f"{USAGE}\ncommands: {', '.join(COMMANDS)}")
    COMMANDS[argv[0]]()


if __name__ == "__main__":
    main()
