"""The user's own inference code: a module in the model's code folder whose hooks replace the
image's, as the sagemaker-inference toolkit and AWS's PyTorch images run them.

SAGEMAKER_PROGRAM names the module (``inference.py``); it lives in /opt/ml/model/code, or in
the folder SAGEMAKER_SUBMIT_DIRECTORY names (a local path, or an S3 tar that `serve` fetches
once). Each hook the module defines replaces the image's own; ``transform_fn`` replaces
input_fn, predict_fn and output_fn together, so defining it beside any of them is an error.
A hook may take one more argument than the toolkit passes: the model server's context.
"""

import importlib.util
import inspect
import logging
import os
import sys
import tempfile
from dataclasses import dataclass, replace

from container.files import extract_tar, switched_on
from container.serving.parameters import MULTI_MODEL_ENV

logger = logging.getLogger(__name__)

PROGRAM_ENV = "SAGEMAKER_PROGRAM"
SUBMIT_DIRECTORY_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
# Where `serve` tells the workers the code folder is, once it has resolved (and fetched) it.
CODE_DIR_ENV = "MNIST_USER_CODE_DIR"
MODEL_CODE_FOLDER = "code"
DEFAULT_MODULE = "inference.py"
HOOKS = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")


@dataclass(frozen=True)
class Hooks:
    """The functions that serve: the image's own, or the user's where their module has them."""

    model_fn: object
    input_fn: object
    predict_fn: object
    output_fn: object
    transform_fn: object = None
    module: str | None = None  # the user's module, when one serves
    user: frozenset = frozenset()  # the hooks it defines

    def own(self, name):
        """Whether the hook ``name`` is the image's own."""
        return name not in self.user


def image_hooks():
    from container.serving import hooks  # torch: only in the processes that serve

    return Hooks(hooks.model_fn, hooks.input_fn, hooks.predict_fn, hooks.output_fn)


def code_dir(model_dir, environ=os.environ):
    """The user's code folder for the model in ``model_dir``: CODE_DIR_ENV once `serve` has
    resolved it, else a local SAGEMAKER_SUBMIT_DIRECTORY, else model_dir/code."""
    resolved = environ.get(CODE_DIR_ENV)
    if resolved:
        return resolved
    submitted = (environ.get(SUBMIT_DIRECTORY_ENV) or "").removeprefix("file://")
    if submitted and not submitted.startswith("s3://"):
        return submitted
    return os.path.join(model_dir, MODEL_CODE_FOLDER)


def fetch(submitted, into):
    """The code in the S3 tar ``submitted``, extracted into ``into``; that folder."""
    import boto3  # the toolkit's dependency: only a job whose code lies in S3 needs it

    bucket, _, key = submitted.removeprefix("s3://").partition("/")
    archive = os.path.join(into, "sourcedir.tar.gz")
    boto3.client("s3").download_file(bucket, key, archive)
    extract_tar(archive, into)
    os.remove(archive)
    return into


def resolve_code_dir(model_dir, environ=os.environ):
    """The code folder, fetched from S3 first when SAGEMAKER_SUBMIT_DIRECTORY is an S3 tar."""
    submitted = environ.get(SUBMIT_DIRECTORY_ENV) or ""
    if submitted.startswith("s3://") and not environ.get(CODE_DIR_ENV):
        return fetch(submitted, tempfile.mkdtemp(prefix="user-code-"))
    return code_dir(model_dir, environ)


def module_path(folder, environ=os.environ):
    """The file of the module SAGEMAKER_PROGRAM names in ``folder``, or None. In multi-model
    mode each model's code folder may hold its own, inference.py unless SAGEMAKER_PROGRAM says
    otherwise, as in AWS's PyTorch images."""
    program = environ.get(PROGRAM_ENV)
    if not program and switched_on(MULTI_MODEL_ENV, environ):
        program = DEFAULT_MODULE
    if not program:
        return None
    path = os.path.join(folder, program if program.endswith(".py") else program + ".py")
    return path if os.path.isfile(path) else None


def load(model_dir, environ=os.environ):
    """The hooks that serve the model in ``model_dir``. A module that cannot be imported, or
    that defines transform_fn beside input_fn, predict_fn or output_fn, raises."""
    folder = code_dir(model_dir, environ)
    path = module_path(folder, environ)
    if path is None:
        if environ.get(PROGRAM_ENV):
            logger.warning(
                "%s=%s names no file in %s: the image's own hooks serve",
                PROGRAM_ENV,
                environ[PROGRAM_ENV],
                folder,
            )
        return image_hooks()
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the module's own imports
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    found = {hook: getattr(module, hook) for hook in HOOKS if callable(getattr(module, hook, None))}
    if "transform_fn" in found and found.keys() & {"input_fn", "predict_fn", "output_fn"}:
        raise ValueError(
            f"{path} defines transform_fn and also "
            f"{', '.join(sorted(found.keys() & {'input_fn', 'predict_fn', 'output_fn'}))}: "
            f"transform_fn replaces those three, so define one or the others"
        )
    logger.info("serving with %s from %s: %s", name, folder, ", ".join(sorted(found)) or "no hooks")
    return replace(image_hooks(), module=path, user=frozenset(found), **found)


def call(function, *args, context=None):
    """``function(*args)``, or with the model server's context after them where it takes one
    more argument, as the toolkit calls hooks."""
    try:
        count = len(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        count = len(args)
    return function(*args, context) if count == len(args) + 1 else function(*args)
