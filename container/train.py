"""Training: the sagemaker-training toolkit's trainer calls ``main()``.

``python -m container train`` (the image's ``train``) sets SAGEMAKER_TRAINING_MODULE to
container.train:main; the toolkit reads /opt/ml, calls main(), and writes
/opt/ml/output/success, or failure with the message of the exception that ended the job
(a ClientError's message as it is, anything else with its traceback), and exits non-zero.
"""
import json
import os
import re
import resource
import signal
import socket
import time
from datetime import timedelta

import torch
import torch.distributed as dist
from sagemaker_training.errors import ClientError
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from container import artifacts, settings
from container.data import load_mnist
from container.hyperparameters import parse_args
from container.metrics import TEST_LINE, TRAIN_LINE
from model.networks import build_model

# Hyperparameters that change the trained model; a checkpoint resumes only under the same ones.
RESUME_KEYS = ("model", "hidden_channels", "kernel_size", "dropout", "epochs", "batch_size",
               "lr", "momentum", "weight_decay", "optimizer", "schedule", "gamma",
               "label_smoothing", "augment", "seed")


class TrainingStopped(ClientError):
    """SIGTERM arrived; a checkpoint was written first."""


class _StopFlag:
    """Set by SIGTERM; the training loop checks it after every batch."""
    signum = None

    def install(self):
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self.signum = signum


STOP = _StopFlag()


def log(message):
    print(message, flush=True)


# ---------------------------------------------------------------- cluster layout

class Layout:
    """Where this process sits: hosts from SM_HOSTS, GPUs from SM_NUM_GPUS."""

    def __init__(self, environ, backend):
        self.hosts = json.loads(environ.get(settings.HOSTS_ENV) or "[]") or ["localhost"]
        self.current_host = environ.get(settings.CURRENT_HOST_ENV) or self.hosts[0]
        if self.current_host not in self.hosts:
            raise ClientError(f"current host {self.current_host} is not in hosts {self.hosts}")
        gpus = int(environ.get(settings.NUM_GPUS_ENV) or 0)
        self.use_cuda = gpus > 0 and torch.cuda.is_available()
        self.procs_per_host = torch.cuda.device_count() if self.use_cuda else 1
        self.world_size = len(self.hosts) * self.procs_per_host
        self.host_rank = self.hosts.index(self.current_host)
        self.master = self.hosts[0]
        if backend == "auto":
            backend = "nccl" if self.use_cuda else "gloo"
        if backend == "nccl" and not self.use_cuda:
            raise ClientError("hyperparameter backend=nccl needs GPUs; this host has none. "
                              "Use gloo or auto")
        self.backend = backend
        cpus = int(environ.get(settings.NUM_CPUS_ENV) or len(os.sched_getaffinity(0)))
        self.threads = max(1, cpus // self.procs_per_host)


def wait_for_host(host, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError:
            if time.monotonic() > deadline:
                raise ClientError(f"host {host} did not resolve within {timeout_s} s") from None
            time.sleep(1)


# ---------------------------------------------------------------- the model's step

def make_optimizer(args, params):
    if args.optimizer == "sgd":
        return torch.optim.SGD(params, lr=args.lr, momentum=args.momentum,
                               nesterov=args.momentum > 0 and args.schedule == "onecycle",
                               weight_decay=args.weight_decay)
    if args.optimizer == "adam":
        return torch.optim.Adam(params, lr=args.lr, weight_decay=args.weight_decay)
    if args.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    return torch.optim.Adadelta(params, lr=args.lr, weight_decay=args.weight_decay)


def make_scheduler(args, optimizer, steps_per_epoch):
    """Stepped once per batch."""
    if args.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
            pct_start=0.25, cycle_momentum=args.optimizer == "sgd" and args.momentum > 0)
    if args.schedule == "step":  # gamma once per epoch, as pytorch/examples does
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: args.gamma ** (step // steps_per_epoch))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def augment(x, max_degrees=10.0, max_shift=0.1, max_scale=0.1):
    """Each image its own random rotation, shift (fraction of the side) and scale."""
    n = x.shape[0]
    rand = torch.rand(n, 4, device=x.device) * 2 - 1
    angle = rand[:, 0] * max_degrees * torch.pi / 180
    scale = 1 + rand[:, 1] * max_scale
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, rand[:, 2] * max_shift * 2], 1),
                         torch.stack([sin, cos, rand[:, 3] * max_shift * 2], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def as_input(images, memory_format):
    """uint8 (N, 1, 28, 28) to the float 0-1 pixels the networks take."""
    return images.float().div_(255).contiguous(memory_format=memory_format)


def test(model, split, args, device, memory_format):
    """(average loss, accuracy %, predicted labels) on ``split``."""
    model.eval()
    loss, predictions = 0.0, []
    with torch.no_grad():
        for start in range(0, len(split), args.test_batch_size):
            images = split.images[start:start + args.test_batch_size]
            labels = split.labels[start:start + args.test_batch_size]
            with autocast(device, args):
                logits = model(as_input(images, memory_format)).float()
            loss += F.cross_entropy(logits, labels, reduction="sum").item()
            predictions.append(logits.argmax(1))
    model.train()
    predictions = torch.cat(predictions)
    accuracy = 100.0 * (predictions == split.labels).sum().item() / len(split)
    return loss / len(split), accuracy, predictions.cpu()


def amp_dtype(device, args):
    if device.type != "cuda" or not args.amp:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device, args):
    dtype = amp_dtype(device, args)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


# ---------------------------------------------------------------- checkpoints

def checkpoint_path(args):
    return os.path.join(args.checkpoint_dir, settings.CHECKPOINT_FILE)


def save_checkpoint(args, state):
    os.makedirs(args.checkpoint_dir, exist_ok=True)
    path = checkpoint_path(args)
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # a stop mid-write never leaves half a checkpoint
    return path


def load_checkpoint(args):
    path = checkpoint_path(args)
    if not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same answer
        raise ClientError(f"checkpoint {path} cannot be read ({e}); remove it to start "
                          f"afresh") from None
    wanted = {key: getattr(args, key) for key in RESUME_KEYS}
    if state.get("hyperparameters") != wanted:
        differ = sorted(k for k in wanted if state.get("hyperparameters", {}).get(k) != wanted[k])
        raise ClientError(f"checkpoint {path} was written with other hyperparameters "
                          f"({', '.join(differ)}); use the same ones to resume, or remove it")
    return state


# ---------------------------------------------------------------- training

def train(args, layout, local_rank=0):
    """Train on this process's share; rank 0 writes artifacts. Returns the metrics dict."""
    rank = layout.host_rank * layout.procs_per_host + local_rank
    distributed = layout.world_size > 1
    device = torch.device(f"cuda:{local_rank}" if layout.use_cuda else "cpu")
    if layout.use_cuda:
        torch.cuda.set_device(device)
    torch.set_num_threads(layout.threads)
    if distributed:
        master_addr = wait_for_host(layout.master, settings.DISTRIBUTED_TIMEOUT_S)
        dist.init_process_group(
            layout.backend, init_method=f"tcp://{master_addr}:{settings.MASTER_PORT}",
            rank=rank, world_size=layout.world_size,
            timeout=timedelta(seconds=settings.DISTRIBUTED_TIMEOUT_S))
    is_main = rank == 0
    say = log if is_main else (lambda message: None)
    say(f"Training {args.model} on {layout.world_size} process(es), device {device}, "
        f"{layout.threads} thread(s) each")

    train_split, test_split = load_mnist(args.train, args.test)
    for split in (train_split, test_split):  # the whole data set lives on the device
        split.images, split.labels = split.images.to(device), split.labels.to(device)
    n = len(train_split)
    say(f"Data: {n} training and {len(test_split)} test images")

    memory_format = torch.channels_last
    torch.manual_seed(args.seed)
    net = build_model(args.net_config).to(device, memory_format=memory_format)
    model = DistributedDataParallel(net, device_ids=[local_rank] if layout.use_cuda else None) \
        if distributed else net
    local_batch = -(-args.batch_size // layout.world_size)
    steps_per_epoch = -(-n // args.batch_size)
    optimizer = make_optimizer(args, model.parameters())
    scheduler = make_scheduler(args, optimizer, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype(device, args) == torch.float16)

    state = load_checkpoint(args) if is_main else None
    if distributed:
        box = [state]
        dist.broadcast_object_list(box, src=0)
        state = box[0]
    start_epoch, start_batch, history, train_seconds = 1, 0, [], 0.0
    if state:
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, start_batch = state["epoch"], state["batch"]
        history, train_seconds = json.loads(state["history"]), state["train_seconds"]
        say(f"Resuming from {checkpoint_path(args)}: epoch {start_epoch}, batch {start_batch}")

    def snapshot(epoch, batch):
        return {"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch, "batch": batch,
                "history": json.dumps(history), "train_seconds": train_seconds,
                "hyperparameters": {key: getattr(args, key) for key in RESUME_KEYS}}

    sampler = DistributedSampler(range(n), num_replicas=layout.world_size, rank=rank,
                                 shuffle=True, seed=args.seed)
    model.train()
    for epoch in range(start_epoch, args.epochs + 1):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), device=device)
        epoch_start, loss_sum = time.perf_counter(), torch.zeros((), device=device)
        first = start_batch if epoch == start_epoch else 0
        for batch in range(first, steps_per_epoch):
            # Seeded per step: dropout and augmentation repeat exactly after a resume.
            step = (epoch - 1) * steps_per_epoch + batch
            torch.manual_seed(args.seed * 1_000_003 + rank * 65_537 + step)
            index = order[batch * local_batch:(batch + 1) * local_batch]
            images = as_input(train_split.images[index], memory_format)
            labels = train_split.labels[index]
            if args.augment:
                images = augment(images)
            with autocast(device, args):
                loss = F.cross_entropy(model(images).float(), labels,
                                       label_smoothing=args.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            if (batch + 1) % args.log_interval == 0:
                seen = min((batch + 1) * args.batch_size, n)
                say(TRAIN_LINE.format(epoch=epoch, seen=seen, total=n, loss=loss.item(),
                                      percent=100.0 * (batch + 1) / steps_per_epoch))
            loss_sum += loss.detach()
            if STOP.signum is not None:
                train_seconds += time.perf_counter() - epoch_start
                if is_main:
                    path = save_checkpoint(args, snapshot(epoch, batch + 1))
                    log(f"SIGTERM: checkpoint saved to {path} at epoch {epoch}, "
                        f"batch {batch + 1}/{steps_per_epoch}")
                raise TrainingStopped(f"stopped by signal {STOP.signum} in epoch {epoch} "
                                      f"at batch {batch + 1}/{steps_per_epoch}; the checkpoint "
                                      f"in {args.checkpoint_dir} resumes it")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        epoch_seconds = time.perf_counter() - epoch_start
        train_seconds += epoch_seconds
        if is_main:
            test_loss, accuracy, _ = test(net, test_split, args, device, memory_format)
            say(TEST_LINE.format(loss=test_loss, accuracy=accuracy))
            done = max(steps_per_epoch - first, 1)
            history.append({"epoch": epoch, "train_loss": loss_sum.item() / done,
                            "test_loss": test_loss,
                            "test_accuracy": accuracy, "epoch_seconds": epoch_seconds,
                            "train_seconds": train_seconds,
                            "images_per_second": done * args.batch_size / max(epoch_seconds, 1e-9)})
            save_checkpoint(args, snapshot(epoch + 1, 0))

    metrics = None
    if is_main:
        test_loss, accuracy, predictions = test(net, test_split, args, device, memory_format)
        metrics = {
            "model": args.model, "epochs": args.epochs, "test_accuracy": accuracy,
            "test_loss": test_loss, "train_seconds": train_seconds,
            "world_size": layout.world_size, "device": device.type,
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        if device.type == "cuda":
            metrics["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        artifacts.save_model(net.cpu().eval(), args.net_config, args.model_dir, metrics)
        artifacts.save_reports(history, predictions, test_split.labels.cpu(), args.output_data_dir)
        log(f"Final test accuracy {accuracy:.2f}% after {train_seconds:.1f} s of training; "
            f"model in {args.model_dir}")
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return metrics


def _spawned(local_rank, args, layout):
    STOP.install()
    train(args, layout, local_rank)


# What gloo and NCCL say when a peer process or host is gone.
PEER_LOST = ("Connection reset by peer", "Connection closed by peer", "Broken pipe",
             "Connection refused", "Socket closed", "timed out", "Timed out", "NCCL")


def peer_lost(error):
    """A ClientError that says plainly that another process left, from a backend's error."""
    first = re.sub(r"^\[[^\]]*\]\s*", "", (str(error).strip().splitlines() or [""])[0])
    return ClientError(f"distributed training stopped: another host or process of the job "
                       f"left or stopped answering ({first.split('. ')[0][:200]})")


def run(args, environ=os.environ):
    """Train with ``args`` on every process this host owns."""
    layout = Layout(environ, args.backend)
    STOP.install()
    if layout.procs_per_host == 1:
        try:
            return train(args, layout)
        except RuntimeError as e:
            if layout.world_size > 1 and any(words in str(e) for words in PEER_LOST):
                raise peer_lost(e) from e
            raise
    context = torch.multiprocessing.start_processes(
        _spawned, args=(args, layout), nprocs=layout.procs_per_host, join=False,
        start_method="spawn")
    signal.signal(signal.SIGTERM, lambda signum, frame: [
        os.kill(p.pid, signum) for p in context.processes if p.is_alive()])
    while not context.join():
        pass
    return None


def main():
    # Here, not at the top: the toolkit's environment brings boto3, which training itself (run
    # in-process by local_test.bench_gpu, say) does not need.
    from sagemaker_training import environment
    env = environment.Environment()
    environ = {**os.environ, **env.to_env_vars()}
    args = parse_args(env.to_cmd_args(), environ)
    run(args, environ)


if __name__ == "__main__":
    main()
