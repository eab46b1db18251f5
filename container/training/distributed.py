"""Where each training process sits: one process a host, or one a GPU on each host, joined by
DistributedDataParallel when there are several."""

import json
import os
import signal
import socket
import time
from datetime import timedelta

import torch
import torch.distributed as dist
from sagemaker_training.errors import ClientError

from container.messages import without_prefix
from container.training import parameters as p
from container.training.checkpoints import STOP

# What gloo and NCCL say when a peer process or host is gone.
PEER_LOST = (
    "Connection reset by peer",
    "Connection closed by peer",
    "Broken pipe",
    "Connection refused",
    "Socket closed",
    "timed out",
    "Timed out",
    "NCCL",
)


class Layout:
    """Hosts from SM_HOSTS, GPUs from SM_NUM_GPUS, and this host's place among them."""

    def __init__(self, environ, backend):
        self.hosts = json.loads(environ.get(p.HOSTS_ENV) or "[]") or ["localhost"]
        self.current_host = environ.get(p.CURRENT_HOST_ENV) or self.hosts[0]
        if self.current_host not in self.hosts:
            raise ClientError(f"current host {self.current_host} is not in hosts {self.hosts}")
        gpus = int(environ.get(p.NUM_GPUS_ENV) or 0)
        self.use_cuda = gpus > 0 and torch.cuda.is_available()
        self.procs_per_host = torch.cuda.device_count() if self.use_cuda else 1
        self.world_size = len(self.hosts) * self.procs_per_host
        self.host_rank = self.hosts.index(self.current_host)
        self.master = self.hosts[0]
        if backend == "auto":
            backend = "nccl" if self.use_cuda else "gloo"
        if backend == "nccl" and not self.use_cuda:
            raise ClientError(
                "hyperparameter backend=nccl needs GPUs; this host has none. Use gloo or auto"
            )
        self.backend = backend
        # The toolkit counts the host's CPUs; a process pinned to fewer (taskset, a cpuset)
        # runs on those alone, and more threads than them only contend.
        pinned = len(os.sched_getaffinity(0))
        cpus = min(int(environ.get(p.NUM_CPUS_ENV) or pinned), pinned)
        self.threads = max(1, cpus // self.procs_per_host)

    @property
    def distributed(self):
        return self.world_size > 1

    def rank(self, local_rank):
        return self.host_rank * self.procs_per_host + local_rank

    def device(self, local_rank):
        return torch.device(f"cuda:{local_rank}" if self.use_cuda else "cpu")


def wait_for_host(host, timeout_s):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError:
            if time.monotonic() > deadline:
                raise ClientError(f"host {host} did not resolve within {timeout_s} s") from None
            time.sleep(1)


def join(layout, rank):
    """This process in the job's process group, when there are several processes."""
    if not layout.distributed:
        return
    master_addr = wait_for_host(layout.master, p.DISTRIBUTED_TIMEOUT_S)
    dist.init_process_group(
        layout.backend,
        init_method=f"tcp://{master_addr}:{p.MASTER_PORT}",
        rank=rank,
        world_size=layout.world_size,
        timeout=timedelta(seconds=p.DISTRIBUTED_TIMEOUT_S),
    )


def leave(layout):
    if layout.distributed:
        dist.barrier()
        dist.destroy_process_group()


def broadcast(layout, value):
    """Rank 0's ``value``, on every process."""
    if not layout.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def peer_lost(error):
    """A ClientError that says plainly that another process left, from a backend's error."""
    first = without_prefix(error).split(". ")[0][:200]
    return ClientError(
        f"distributed training stopped: another host or process of the job left or stopped "
        f"answering ({first})"
    )


def _spawned(local_rank, fit, config, job, layout):
    STOP.install()
    fit(config, job, layout, local_rank)


def launch(fit, config, job, layout):
    """``fit(config, job, layout, local_rank)`` on every process this host owns."""
    STOP.install()
    if layout.procs_per_host == 1:
        try:
            return fit(config, job, layout)
        except RuntimeError as e:
            if layout.distributed and any(words in str(e) for words in PEER_LOST):
                raise peer_lost(e) from e
            raise
    context = torch.multiprocessing.start_processes(
        _spawned,
        args=(fit, config, job, layout),
        nprocs=layout.procs_per_host,
        join=False,
        start_method="spawn",
    )
    signal.signal(
        signal.SIGTERM,
        lambda signum, frame: [os.kill(q.pid, signum) for q in context.processes if q.is_alive()],
    )
    while not context.join():
        pass
    return None
