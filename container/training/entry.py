"""The `train` command and the function the sagemaker-training toolkit calls, which runs the
job's own script (user_script) or the built-in trainer.

``train()`` runs the toolkit's trainer with SAGEMAKER_TRAINING_MODULE pointing at ``main``;
the toolkit reads /opt/ml, calls ``main()``, and writes /opt/ml/output/success, or failure with
the message of the exception that ended the job (a ClientError's message as it is, anything
else with its traceback), and exits non-zero.
"""

import os

from container.files import base_dir
from container.training import user_script
from container.training.distributed import Layout, launch
from container.training.hyperparameters import parse_hyperparameters
from container.training.loop import fit
from container.training.parameters import TRAINING_MODULE, TRAINING_MODULE_ENV


def train():
    # The toolkit writes its failure file into /opt/ml/output and, when that folder is missing,
    # fails to write it and exits 0: a broken job would look like a success.
    os.makedirs(os.path.join(base_dir(), "output"), exist_ok=True)
    os.environ.setdefault(TRAINING_MODULE_ENV, TRAINING_MODULE)
    from sagemaker_training import trainer  # reads SAGEMAKER_BASE_DIR when imported

    trainer.train()


def run(argv, environ=os.environ):
    """Trains with the hyperparameter flags ``argv`` on every process this host owns; the
    metrics of rank 0 when it runs in this process."""
    config, job = parse_hyperparameters(argv, environ)
    return launch(fit, config, job, Layout(environ, job.backend))


def main():
    """The job's own script when it names one (script mode), else the built-in trainer with
    the job's hyperparameters (the reserved sagemaker_* ones are the toolkit's, not its)."""
    # Imported here: the toolkit's environment brings boto3, which training itself (run
    # in-process by the GPU benchmark, say) does not need.
    from sagemaker_training import environment

    env = environment.Environment()
    if user_script.program(env):
        user_script.run(env)
    else:
        run(env.to_cmd_args(), {**os.environ, **env.to_env_vars()})
