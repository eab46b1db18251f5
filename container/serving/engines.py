"""What runs the net: ONNX Runtime on the CPU, torch on a GPU and wherever ONNX Runtime cannot.

An engine is called with a float32 tensor of (N, 1, 28, 28) pixels and returns (N, 10) logits.
``small_batch`` is the most images it runs on a worker's own share of the cores; a larger batch
also takes the cores that the other workers leave idle (``container.serving.cores``). ``views``
is how many images the net runs in one pass for each image it is given (test-time shifts).
"""

import io
import logging
import os
import warnings

import onnxruntime
import torch

from container import torchscript
from container.files import MODEL_FILES, STATE_DICT_FILE, TORCHSCRIPT_FILE
from container.messages import describe
from model.networks import IMAGE_SIZE, NetConfig, build_model

logger = logging.getLogger(__name__)

# Random images on which an exported net must give torch's logits.
PROBE_IMAGES = 8
PROBE_TOLERANCE = 1e-4


class OnnxEngine:
    """The net on ONNX Runtime's CPU kernels, one session for each thread count it runs on.

    Sessions are made in the process that runs them: the server forks its workers from the
    process that loaded the model, and a session's threads do not survive a fork. A forked
    process keeps the sessions it inherited, unused, since freeing one whose threads stayed
    in the parent hangs. Idle sessions do not spin, which would take the other workers' cores."""

    small_batch = 16  # from here on a second thread makes a pass faster

    def __init__(self, onnx, views=1):
        self.onnx, self.device, self.views = onnx, torch.device("cpu"), views
        self._sessions, self._pid, self._inherited = {}, os.getpid(), []

    def session(self, threads):
        if self._pid != os.getpid():
            self._inherited.append(self._sessions)
            self._sessions, self._pid = {}, os.getpid()
        if threads not in self._sessions:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._sessions[threads] = onnxruntime.InferenceSession(
                self.onnx, options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[threads]

    def __call__(self, x):
        (logits,) = self.session(torch.get_num_threads()).run(None, {"pixels": x.numpy()})
        return torch.from_numpy(logits)


class TorchEngine:
    """The net on torch: on a GPU, and on the CPU for a net ONNX Runtime cannot run."""

    small_batch = 32

    def __init__(self, net, device):
        self.net, self.device, self.views = net.to(device), device, views_of(net)

    def __call__(self, x):
        return self.net(x)


def views_of(net):
    """Images that ``net`` (an engine, a module or TorchScript) runs in one pass for each image
    it is given."""
    return int(getattr(net, "views", 1))


def to_onnx(net):
    """``net`` (a module or TorchScript) as ONNX bytes, any number of images to their logits.
    Through torch's TorchScript-based exporter, which takes a fraction of the torch.export
    one's time: the export is part of every server's start-up."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # that exporter is deprecated, and says so
        torch.onnx.export(
            net,
            (torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE),),
            buffer,
            input_names=["pixels"],
            output_names=["logits"],
            dynamic_axes={"pixels": {0: "images"}, "logits": {0: "images"}},
            dynamo=False,
        )
    return buffer.getvalue()


def onnx_engine(net):
    """``net`` on ONNX Runtime, or None (with a warning in the log) where it cannot be exported
    or its logits on random pixels differ from torch's by more than PROBE_TOLERANCE."""
    try:
        engine = OnnxEngine(to_onnx(net), views_of(net))
        probe = torch.rand(
            PROBE_IMAGES, 1, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(0)
        )
        with torch.inference_mode():
            difference = float((engine(probe) - net(probe)).abs().max())
        if not difference <= PROBE_TOLERANCE:  # NaN too
            raise ValueError(f"its logits differ from torch's by {difference:g}")
    except Exception as e:  # noqa: BLE001 - the exporter and the runtime raise many kinds
        logger.warning("the model runs on torch: ONNX Runtime cannot run it (%s)", describe(e))
        return None
    return engine


def load_net(model_dir):
    """The net that training wrote into ``model_dir``, in eval mode on the CPU: the state dict
    rebuilt from its saved config (no code needed), else the TorchScript file."""
    state_path = os.path.join(model_dir, STATE_DICT_FILE)
    script_path = os.path.join(model_dir, TORCHSCRIPT_FILE)
    if os.path.exists(state_path):
        try:
            saved = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many kinds here
            raise ValueError(
                f"{state_path} is not a weights-only PyTorch checkpoint ({type(e).__name__})"
            ) from None
        net = build_model(NetConfig(**saved["config"]))
        net.load_state_dict(saved["state_dict"])
        if hasattr(net, "for_inference"):
            net = net.for_inference()
    elif os.path.exists(script_path):
        net = torchscript.load(script_path)
    else:
        found = sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else []
        raise FileNotFoundError(
            f"{model_dir} holds neither {' nor '.join(MODEL_FILES)} "
            f"(found: {', '.join(found) or 'nothing'})"
        )
    return net.eval()


def engine_for(net, device):
    """The fastest engine that runs ``net`` on ``device``."""
    engine = onnx_engine(net) if device.type == "cpu" else None
    return engine or TorchEngine(net, device)
