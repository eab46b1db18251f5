"""Stopping and resuming: SIGTERM (a spot interruption, `docker stop`) writes a checkpoint
mid-epoch, every epoch writes one, and a job that finds one resumes from it."""

import os
import signal

import torch
from sagemaker_training.errors import ClientError

from container.files import CHECKPOINT_FILE


class TrainingStopped(ClientError):
    """SIGTERM arrived; a checkpoint was written first."""


class StopFlag:
    """Set by SIGTERM; the training loop checks it after every batch."""

    signum = None

    def install(self):
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.signum = signum


STOP = StopFlag()


def checkpoint_path(folder):
    return os.path.join(folder, CHECKPOINT_FILE)


def save(folder, state):
    os.makedirs(folder, exist_ok=True)
    path = checkpoint_path(folder)
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # a stop mid-write never leaves half a checkpoint
    return path


def load(folder, config):
    """The checkpoint in ``folder`` written under ``config`` (a TrainConfig), or None when there
    is none; one written under another config is refused."""
    path = checkpoint_path(folder)
    if not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same answer
        raise ClientError(
            f"checkpoint {path} cannot be read ({e}); remove it to start afresh"
        ) from None
    saved = state.get("config") if isinstance(state, dict) else None
    # A setting added since the checkpoint was written counts as its default there.
    differ = config.changed_from(saved) if isinstance(saved, dict) else []
    if not isinstance(saved, dict) or differ:
        raise ClientError(
            f"checkpoint {path} was written with other hyperparameters "
            f"({', '.join(differ) or 'an older layout'}); use the same ones to resume, or remove it"
        )
    return state
