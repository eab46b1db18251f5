"""The inference hooks, as the sagemaker-inference toolkit names them."""

import numpy as np
import torch

from container.serving import decoders, encoders
from container.serving.engines import engine_for, load_net, views_of
from model.networks import IMAGE_SIZE

# The most images in one pass through the net: a pass's activations take about 37 KB an image,
# and this keeps the largest of them under the size above which malloc maps fresh pages from
# the kernel for every allocation (docs/performance.md). A net that runs several views of each
# image takes MAX_PASS over its views at a time.
MAX_PASS = 1024


def model_fn(model_dir, device=None):
    """The net that training wrote into ``model_dir``, on the engine that runs it fastest,
    run once on each side of its small-batch size so that the first request pays nothing."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = engine_for(load_net(model_dir), device)
    for size in (1, model.small_batch + 1):
        predict_fn(np.zeros((size, 1, IMAGE_SIZE, IMAGE_SIZE), np.float32), model)
    return model


def input_fn(body, content_type):
    """Request bytes of ``content_type`` to float32 (N, 1, 28, 28) pixels in 0-1."""
    return decoders.decode(body, content_type)


def predict_fn(batch, model):
    """Probabilities (N, 10): the batch in passes of at most MAX_PASS images through the net.
    ``model`` is what model_fn returned: the image's engine, or a user's own torch module (put
    in eval mode, as AWS's PyTorch images do) whose logits or log-probabilities it softmaxes."""
    if isinstance(model, torch.nn.Module) and model.training:
        model.eval()
    device, views = device_of(model), views_of(model)
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(batch))
        passes = [
            torch.softmax(model(part.to(device)).float(), dim=1).cpu()
            for part in x.split(max(1, MAX_PASS // views))
        ]
        return (passes[0] if len(passes) == 1 else torch.cat(passes)).numpy()


def device_of(model):
    """Where ``model`` runs: an engine's device, else that of a module's first weight."""
    if hasattr(model, "device"):
        return torch.device(model.device)
    weight = next(model.parameters(), None) if isinstance(model, torch.nn.Module) else None
    return weight.device if weight is not None else torch.device("cpu")


def output_fn(probabilities, accept):
    """(body, content type) of the predictions in the media type ``accept`` asks for."""
    return encoders.encode(probabilities, accept)
