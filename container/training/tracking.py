"""MLflow tracking of the built-in trainer: one run per job, logged by rank 0 alone, when the
job says where (MLFLOW_TRACKING_URI: a server's URL, or a SageMaker managed MLflow ARN, which
the sagemaker-mlflow plugin resolves). A tracking server that cannot be reached costs one
warning: training goes on without it.
"""

import logging
import os
from dataclasses import dataclass

from container.messages import describe

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
RUN_NAME_ENV = "MLFLOW_RUN_NAME"
RUN_ID_ENV = "MLFLOW_RUN_ID"  # a run made for the job beforehand, which it continues
# What SageMaker tells every training container about itself.
JOB_NAME_ENV = "TRAINING_JOB_NAME"
INSTANCE_TYPE_ENV = "SM_CURRENT_INSTANCE_TYPE"
HOSTS_ENV = "SM_HOSTS"
# The MLflow client's own retries take minutes against a server that is down: a few seconds
# here, unless the job sets them.
CLIENT_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
}


def quiet_arn_plugin(uri):
    """Silences what the sagemaker-mlflow plugin says on every request to a server that is not
    a SageMaker ARN: its header provider runs for all of them, fails, and MLflow warns."""
    if not uri.startswith("arn:"):
        logging.getLogger("mlflow.tracking.request_header.registry").setLevel(logging.ERROR)


@dataclass(frozen=True)
class TrackingSettings:
    uri: str
    experiment: str | None = None
    run_name: str | None = None
    run_id: str | None = None
    tags: tuple = ()  # (name, value) pairs


def settings_from(environ):
    """The job's tracking settings, or None when it names no tracking URI."""
    uri = environ.get(TRACKING_URI_ENV)
    if not uri:
        return None
    job_name = environ.get(JOB_NAME_ENV)
    tags = {
        "sagemaker.training_job_name": job_name,
        "sagemaker.instance_type": environ.get(INSTANCE_TYPE_ENV),
        "sagemaker.hosts": environ.get(HOSTS_ENV),
    }
    return TrackingSettings(
        uri=uri,
        experiment=environ.get(EXPERIMENT_ENV) or None,
        run_name=environ.get(RUN_NAME_ENV) or job_name,
        run_id=environ.get(RUN_ID_ENV) or None,
        tags=tuple((k, v) for k, v in tags.items() if v),
    )


class Tracker:
    """The job's MLflow run, or nothing: with no settings, and after the first call that fails
    (one warning, then training goes on untracked)."""

    def __init__(self, settings):
        self.settings = settings
        self.mlflow = None

    @property
    def active(self):
        return self.settings is not None

    def _call(self, what, function, *args, **kwargs):
        if not self.active:
            return None
        try:
            return function(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - never let tracking end the job
            print(
                f"WARNING: MLflow tracking at {self.settings.uri} is off for the rest of the job: "
                f"{what} failed ({describe(e)[:300]})",
                flush=True,
            )
            self.settings = None
            return None

    def start(self, params):
        """Starts (or continues) the run and logs ``params``; the run's ID, or None."""

        def begin():
            for name, value in CLIENT_DEFAULTS.items():
                os.environ.setdefault(name, value)
            import mlflow

            quiet_arn_plugin(self.settings.uri)
            self.mlflow = mlflow
            mlflow.set_tracking_uri(self.settings.uri)
            if self.settings.experiment and not self.settings.run_id:
                mlflow.set_experiment(self.settings.experiment)
            run = mlflow.start_run(
                run_id=self.settings.run_id,
                run_name=None if self.settings.run_id else self.settings.run_name,
                tags=dict(self.settings.tags),
            )
            mlflow.log_params(params)
            print(f"MLflow: run {run.info.run_id} at {self.settings.uri}", flush=True)
            return run.info.run_id

        return self._call("starting the run", begin)

    def metrics(self, values, step):
        self._call("logging metrics", lambda: self.mlflow.log_metrics(values, step=step))

    def artifacts(self, paths):
        def upload():
            for path in paths:
                if os.path.exists(path):
                    self.mlflow.log_artifact(path)

        self._call("uploading artifacts", upload)

    def end(self, status="FINISHED"):
        self._call("ending the run", lambda: self.mlflow.end_run(status=status))
