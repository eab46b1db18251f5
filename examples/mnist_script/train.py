"""pytorch/examples' MNIST, adapted to SageMaker as the original project's script was: paths from
the SM_* variables, hyperparameters as flags, DistributedDataParallel over env:// when the job has
several hosts, and the weights in SM_MODEL_DIR/model.pth (inference.py beside it serves them).

Runs unchanged in this image (script mode) on one instance or several:
    Estimator(image_uri=IMAGE, entry_point="train.py", source_dir="examples/mnist_script", ...)
"""

import argparse
import gzip
import json
import os

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

# Pixel statistics of the MNIST training set, on the 0-1 scale.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class Net(nn.Module):
    """The original project's CNN."""

    def __init__(self, hidden_channels=32, kernel_size=5, dropout=0.2):
        super().__init__()
        self.conv1 = nn.Conv2d(1, hidden_channels, kernel_size=kernel_size)
        self.conv2 = nn.Conv2d(hidden_channels, 20, kernel_size=kernel_size)
        self.conv2_drop = nn.Dropout2d(dropout)
        side = ((28 - kernel_size + 1) // 2 - kernel_size + 1) // 2
        self.fc1 = nn.Linear(20 * side * side, 50)
        self.fc2 = nn.Linear(50, 10)
        self.dropout = dropout

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = torch.flatten(x, 1)
        x = F.dropout(F.relu(self.fc1(x)), p=self.dropout, training=self.training)
        return self.fc2(x)


def read_idx(folder, name):
    """The array in an IDX file (gzipped or not) under ``folder``."""
    for root, _, files in os.walk(folder):
        for candidate in (name, name + ".gz"):
            if candidate in files:
                path = os.path.join(root, candidate)
                with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
                    data = f.read()
                dims = data[3]
                shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
                return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)
    raise FileNotFoundError(f"no {name} under {folder}")


def load(folder, split):
    images = read_idx(folder, f"{split}-images-idx3-ubyte")
    labels = read_idx(folder, f"{split}-labels-idx1-ubyte")
    x = (torch.from_numpy(images.copy()).float().div(255).unsqueeze(1) - MNIST_MEAN) / MNIST_STD
    return torch.utils.data.TensorDataset(x, torch.from_numpy(labels.astype(np.int64)))


def batches(dataset, order, size):
    """(images, labels) in batches of ``size``, in the ``order`` a sampler gives."""
    images, labels = dataset.tensors
    order = torch.tensor(list(order))
    for start in range(0, len(order), size):
        index = order[start : start + size]
        yield images[index], labels[index]


def train(args, model, train_set, sampler, optimizer, epoch):
    model.train()
    steps, total = -(-len(sampler) // args.batch_size), len(sampler)
    for batch, (data, target) in enumerate(batches(train_set, sampler, args.batch_size)):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
        if (batch + 1) % args.log_interval == 0:
            seen = min((batch + 1) * args.batch_size, total)
            print(
                f"Train Epoch: {epoch} [{seen}/{total} ({100.0 * (batch + 1) / steps:.0f}%)], "
                f"Train Loss: {loss.item():.6f};",
                flush=True,
            )


def test(model, test_set, batch_size):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in batches(test_set, range(len(test_set)), batch_size):
            output = model(data)
            loss += F.cross_entropy(output, target, reduction="sum").item()
            correct += (output.argmax(1) == target).sum().item()
    n = len(test_set)
    accuracy = 100.0 * correct / n
    print(f"Test Average loss: {loss / n:.4f}, Test Accuracy: {accuracy:.2f}%;", flush=True)
    return accuracy


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--test_batch_size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--momentum", type=float, default=0.5)
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--hidden_channels", type=int, default=32)
    parser.add_argument("--kernel_size", type=int, default=5)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log_interval", type=int, default=100)
    parser.add_argument("--backend", default="gloo", help="gloo on CPUs, nccl on GPUs")
    parser.add_argument("--hosts", type=json.loads, default=os.environ.get("SM_HOSTS", "[]"))
    parser.add_argument("--current_host", default=os.environ.get("SM_CURRENT_HOST"))
    parser.add_argument("--model_dir", default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAINING"))
    parser.add_argument("--test", default=os.environ.get("SM_CHANNEL_TESTING"))
    args = parser.parse_args()

    world_size = max(len(args.hosts), 1)
    rank = args.hosts.index(args.current_host) if world_size > 1 else 0
    if world_size > 1:  # MASTER_ADDR and MASTER_PORT come from the image
        dist.init_process_group(
            args.backend, init_method="env://", rank=rank, world_size=world_size
        )
    torch.manual_seed(args.seed)

    train_set = load(args.train, "train")
    test_set = load(args.test or args.train, "t10k")
    sampler = torch.utils.data.distributed.DistributedSampler(
        train_set, num_replicas=world_size, rank=rank, seed=args.seed
    )

    net = Net(args.hidden_channels, args.kernel_size, args.dropout)
    model = nn.parallel.DistributedDataParallel(net) if world_size > 1 else net
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        sampler.set_epoch(epoch)
        train(args, model, train_set, sampler, optimizer, epoch)
        if rank == 0:
            accuracy = test(net, test_set, args.test_batch_size)
    if rank == 0:
        config = {k: getattr(args, k) for k in ("hidden_channels", "kernel_size", "dropout")}
        torch.save(
            {"config": config, "state_dict": net.state_dict()},
            os.path.join(args.model_dir, "model.pth"),
        )
        with open(os.path.join(args.model_dir, "metrics.json"), "w") as f:
            json.dump(
                {"test_accuracy": accuracy, "epochs": args.epochs, "world_size": world_size}, f
            )
    if world_size > 1:
        # Together: a rank that tears its group down while rank 0 still evaluates can abort.
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
