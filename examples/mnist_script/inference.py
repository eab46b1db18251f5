"""Serving the model train.py wrote, in this image: the user-code hooks model_fn and predict_fn.

The image's own input_fn decodes every body it accepts (JSON, JSON Lines, CSV, npy, npz, PNG,
JPEG) into float pixels in 0-1, shape (N, 1, 28, 28); its own output_fn answers with labels and
probabilities in the type Accept asks for. Only the model is this script's.
"""

import os

import torch
from train import MNIST_MEAN, MNIST_STD, Net  # the code folder is on sys.path


def model_fn(model_dir):
    saved = torch.load(os.path.join(model_dir, "model.pth"), weights_only=True)
    net = Net(**saved["config"])
    net.load_state_dict(saved["state_dict"])
    return net.eval()


def predict_fn(pixels, model):
    """Probabilities (N, 10) of the images in ``pixels``, as the image's output_fn takes them."""
    with torch.inference_mode():
        x = (torch.from_numpy(pixels) - MNIST_MEAN) / MNIST_STD
        return torch.softmax(model(x), dim=1).numpy()
