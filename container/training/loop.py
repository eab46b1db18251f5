"""The training run: one epoch per function, evaluation beside it, and ``fit`` wiring them."""

import json
import os
import resource
import time
from dataclasses import asdict

import torch
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import update_bn
from torch.utils.data import DistributedSampler

from container.files import CONFUSION_PLOT, CURVES_PLOT, HISTORY_FILE, METRICS_FILE
from container.training import artifacts, checkpoints, distributed
from container.training.checkpoints import STOP, TrainingStopped
from container.training.config import flat_config
from container.training.data import load_mnist
from container.training.metrics import TEST_LINE, TRAIN_LINE
from container.training.optimization import (
    MovingAverage,
    amp_dtype,
    augment,
    autocast,
    make_optimizer,
    make_scheduler,
)
from container.training.tracking import Tracker
from model.networks import build_model

MEMORY_FORMAT = torch.channels_last
# The reports training writes into the output data folder, which MLflow also gets.
REPORT_FILES = (CURVES_PLOT, CONFUSION_PLOT, HISTORY_FILE)


def log(message):
    print(message, flush=True)


def as_input(images):
    """uint8 (N, 1, 28, 28) to the float 0-1 pixels the networks take."""
    return images.float().div_(255).contiguous(memory_format=MEMORY_FORMAT)


class Run:
    """One process's share of a training run: the net, its optimizer and where it stands."""

    def __init__(self, config, job, layout, local_rank, steps_per_epoch):
        self.config, self.job = config, job
        self.rank = layout.rank(local_rank)
        self.is_main = self.rank == 0
        self.device = layout.device(local_rank)
        self.world_size = layout.world_size
        torch.manual_seed(config.seed)
        self.net = build_model(config.net).to(self.device, memory_format=MEMORY_FORMAT)
        self.model = self.net
        if layout.distributed:
            ids = [local_rank] if layout.use_cuda else None
            self.model = DistributedDataParallel(self.net, device_ids=ids)
        self.steps_per_epoch = steps_per_epoch
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.scheduler = make_scheduler(config, self.optimizer, steps_per_epoch)
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=amp_dtype(self.device, job.amp) == torch.float16
        )
        # Batch norm's running statistics are averaged with the weights they belong to.
        self.averaged = MovingAverage(self.net, config.ema) if config.ema else None
        self.epoch, self.batch, self.history, self.train_seconds = 1, 0, [], 0.0
        self.tracker = Tracker(job.tracking if self.is_main else None)

    @property
    def final_net(self):
        """The network that is evaluated and saved: the weights' moving average, where kept."""
        return self.averaged.module if self.averaged is not None else self.net

    def say(self, message):
        if self.is_main:
            log(message)

    def snapshot(self):
        return {
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "history": json.dumps(self.history),
            "train_seconds": self.train_seconds,
            "config": asdict(self.config),
            **({"averaged": self.averaged.state_dict()} if self.averaged is not None else {}),
        }

    def restore(self, state):
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.averaged is not None:
            self.averaged.load_state_dict(state["averaged"])
        self.epoch, self.batch = state["epoch"], state["batch"]
        self.history, self.train_seconds = json.loads(state["history"]), state["train_seconds"]


def augments(config, epoch):
    """Whether ``epoch`` trains on augmented images: the last ``plain_epochs`` do not, so that
    the weights end on the images the model is served."""
    return config.augment and epoch <= config.epochs - config.plain_epochs


def augmented_views(x, y, config):
    """The batch augmented and its labels, each image ``augment_views`` times over (batch
    augmentation: one step learns from several views of an image); an ensemble's members each
    get views of their own, (members, N, 1, 28, 28), so that they see different images and err
    apart."""
    if config.augment_views > 1:
        x, y = x.repeat(config.augment_views, 1, 1, 1), y.repeat(config.augment_views)
    members = config.net.members
    if members == 1:
        return augment(x, elastic=config.elastic), y
    views = augment(x.repeat(members, 1, 1, 1), elastic=config.elastic)
    return views.unflatten(0, (members, x.shape[0])), y


def member_loss(logits, labels, label_smoothing):
    """Cross-entropy; an ensemble's (members, N, classes) logits give the sum of its members'
    own losses, so that each member learns as it would alone."""
    if logits.dim() == 3:
        members = logits.shape[0]
        logits, labels = logits.flatten(0, 1), labels.repeat(members)
        return members * F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing)


def train_epoch(run, images, labels, order):
    """One pass over ``order`` (this process's shard) from ``run.batch``; the summed loss.
    SIGTERM stops it after the current batch, with a checkpoint."""
    config, n = run.config, len(labels)
    local_batch = -(-config.batch_size // run.world_size)
    loss_sum = torch.zeros((), device=run.device)
    started = time.perf_counter()
    for batch in range(run.batch, run.steps_per_epoch):
        # Seeded per step: dropout and augmentation repeat exactly after a resume.
        step = (run.epoch - 1) * run.steps_per_epoch + batch
        torch.manual_seed(config.seed * 1_000_003 + run.rank * 65_537 + step)
        index = order[batch * local_batch : (batch + 1) * local_batch]
        x, y = as_input(images[index]), labels[index]
        if augments(config, run.epoch):
            x, y = augmented_views(x, y, config)
        with autocast(run.device, run.job.amp):
            loss = member_loss(run.model(x).float(), y, config.label_smoothing)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        if run.averaged is not None:
            run.averaged.update_parameters(run.net)
        if (batch + 1) % run.job.log_interval == 0:
            percent = 100.0 * (batch + 1) / run.steps_per_epoch
            seen = min((batch + 1) * config.batch_size, n)
            value = loss.item()
            run.say(
                TRAIN_LINE.format(epoch=run.epoch, seen=seen, total=n, loss=value, percent=percent)
            )
            run.tracker.metrics({"train_loss": value}, step=step + 1)
        loss_sum += loss.detach()
        if STOP.signum is not None:
            run.train_seconds += time.perf_counter() - started
            run.batch = batch + 1
            stop(run)
    return loss_sum


def stop(run):
    where = f"epoch {run.epoch} at batch {run.batch}/{run.steps_per_epoch}"
    if run.is_main:
        path = checkpoints.save(run.job.checkpoint_dir, run.snapshot())
        log(f"SIGTERM: checkpoint saved to {path} at {where.replace(' at ', ', ')}")
        run.tracker.end("KILLED")
    raise TrainingStopped(
        f"stopped by signal {STOP.signum} in {where}; the checkpoint in "
        f"{run.job.checkpoint_dir} resumes it"
    )


def evaluate(net, split, batch_size, device, amp):
    """(average loss, accuracy %, predicted labels) of ``net`` on ``split``."""
    net.eval()
    loss, predictions = 0.0, []
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            images = split.images[start : start + batch_size]
            labels = split.labels[start : start + batch_size]
            with autocast(device, amp):
                logits = net(as_input(images)).float()
            loss += F.cross_entropy(logits, labels, reduction="sum").item()
            predictions.append(logits.argmax(1))
    net.train()
    predictions = torch.cat(predictions)
    accuracy = 100.0 * (predictions == split.labels).sum().item() / len(split)
    return loss / len(split), accuracy, predictions.cpu()


def recalibrate(net, images, batch_size):
    """Recomputes batch norm's statistics on ``images`` as they are: trained on augmented
    batches, they describe augmented images, while the model is served plain ones."""
    batches = (as_input(images[i : i + batch_size]) for i in range(0, len(images), batch_size))
    with torch.no_grad():
        update_bn(batches, net)


def fit(config, job, layout, local_rank=0):
    """Trains on this process's share; rank 0 evaluates and writes the artifacts. Returns the
    metrics on rank 0, else None."""
    device = layout.device(local_rank)
    if layout.use_cuda:
        torch.cuda.set_device(device)
    torch.set_num_threads(layout.threads)
    distributed.join(layout, layout.rank(local_rank))
    train, test = load_mnist(job.train, job.test)
    for split in (train, test):  # the whole data set lives on the device
        split.images, split.labels = split.images.to(device), split.labels.to(device)
    run = Run(config, job, layout, local_rank, steps_per_epoch=-(-len(train) // config.batch_size))
    run.say(
        f"Training {config.net.arch} on {layout.world_size} process(es), device {device}, "
        f"{layout.threads} thread(s) each"
    )
    run.say(f"Data: {len(train)} training and {len(test)} test images")
    state = distributed.broadcast(
        layout, checkpoints.load(job.checkpoint_dir, config) if run.is_main else None
    )
    if state:
        run.restore(state)
        run.say(
            f"Resuming from {checkpoints.checkpoint_path(job.checkpoint_dir)}: "
            f"epoch {run.epoch}, batch {run.batch}"
        )

    run.tracker.start(tracked_params(run.config, layout))
    try:
        metrics = run_epochs(run, train, test, layout)
    except BaseException:
        run.tracker.end("FAILED")
        raise
    distributed.leave(layout)
    return metrics


def tracked_params(config, layout):
    """The hyperparameters that decide the model, as MLflow params, and the job's size."""
    return {**flat_config(asdict(config)), "world_size": layout.world_size}


def run_epochs(run, train, test, layout):
    """The epochs from where ``run`` stands, then ``finish`` on rank 0; its metrics."""
    config, job, device = run.config, run.job, run.device
    sampler = DistributedSampler(
        range(len(train)),
        num_replicas=layout.world_size,
        rank=run.rank,
        shuffle=True,
        seed=config.seed,
    )
    run.model.train()
    while run.epoch <= config.epochs:
        sampler.set_epoch(run.epoch)
        order = torch.tensor(list(sampler), device=device)
        started, first = time.perf_counter(), run.batch
        loss_sum = train_epoch(run, train.images, train.labels, order)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - started
        run.train_seconds += seconds
        if run.is_main:
            if run.epoch == config.epochs and config.augment:
                recalibrate(run.final_net, train.images, job.test_batch_size)
            test_loss, accuracy, _ = evaluate(
                run.final_net, test, job.test_batch_size, device, job.amp
            )
            run.say(TEST_LINE.format(loss=test_loss, accuracy=accuracy))
            done = max(run.steps_per_epoch - first, 1)
            run.history.append(
                {
                    "epoch": run.epoch,
                    "train_loss": loss_sum.item() / done,
                    "test_loss": test_loss,
                    "test_accuracy": accuracy,
                    "epoch_seconds": seconds,
                    "train_seconds": run.train_seconds,
                    "images_per_second": done * config.batch_size / max(seconds, 1e-9),
                }
            )
            epoch = run.history[-1]
            run.tracker.metrics(
                {
                    "epoch_train_loss" if k == "train_loss" else k: v
                    for k, v in epoch.items()
                    if k != "epoch"
                },
                step=run.epoch,
            )
        run.epoch, run.batch = run.epoch + 1, 0
        if run.is_main:
            checkpoints.save(job.checkpoint_dir, run.snapshot())

    return finish(run, test) if run.is_main else None


def finish(run, test):
    """The final evaluation, the model folder and the reports; the metrics."""
    job, device = run.job, run.device
    net = run.final_net
    test_loss, accuracy, predictions = evaluate(net, test, job.test_batch_size, device, job.amp)
    metrics = {
        "model": run.config.net.arch,
        "epochs": run.config.epochs,
        "test_accuracy": accuracy,
        "test_loss": test_loss,
        "train_seconds": run.train_seconds,
        "world_size": run.world_size,
        "device": device.type,
        "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        metrics["peak_gpu_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    artifacts.save_model(net.cpu().eval(), run.config.net, job.model_dir, metrics)
    artifacts.save_reports(run.history, predictions, test.labels.cpu(), job.output_data_dir)
    log(
        f"Final test accuracy {accuracy:.2f}% after {run.train_seconds:.1f} s of training; "
        f"model in {job.model_dir}"
    )
    run.tracker.metrics({"final_test_accuracy": accuracy, "final_test_loss": test_loss}, step=0)
    run.tracker.artifacts(
        [os.path.join(job.model_dir, METRICS_FILE)]
        + [os.path.join(job.output_data_dir, name) for name in REPORT_FILES]
    )
    run.tracker.end()
    return metrics
