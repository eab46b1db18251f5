"""The cores shared out among worker processes forked from one CoreShare, as the model
server's workers fork from the process that loaded the model."""

import multiprocessing
import os
import signal

import pytest
import torch

from container.serving.cores import CoreShare

fork = multiprocessing.get_context("fork")


def hold(cores, large, holding, done):
    """A worker in the middle of a request: it holds its threads until ``done`` is set."""
    holding.put(cores.threads_for(large))
    done.wait(30)
    cores.release()


def start_holder(cores, large):
    holding, done = fork.Queue(), fork.Event()
    process = fork.Process(target=hold, args=(cores, large, holding, done))
    process.start()
    return process, holding.get(timeout=30), done


def test_each_worker_gets_its_share_of_the_cores():
    assert CoreShare(cores=2, workers=2).share == 1
    assert CoreShare(cores=8, workers=2).share == 4
    assert CoreShare(cores=2, workers=4).share == 1  # never none


def test_a_large_batch_takes_the_cores_no_other_worker_uses():
    cores = CoreShare(cores=4, workers=4)
    assert cores.threads_for(large=True) == 4  # the others are idle: the whole machine
    cores.release()
    busy = [start_holder(cores, large=False) for _ in range(2)]
    try:
        assert [threads for _, threads, _ in busy] == [1, 1]
        assert cores.threads_for(large=True) == 2  # two cores are serving small requests
        cores.release()
        assert cores.threads_for(large=False) == 1  # a small batch keeps to its share
        cores.release()
    finally:
        for process, _, done in busy:
            done.set()
            process.join(30)
    assert cores.threads_for(large=True) == 4  # they finished: every core is free again
    cores.release()


def test_two_large_batches_never_take_more_cores_than_there_are():
    cores = CoreShare(cores=4, workers=2)
    process, threads, done = start_holder(cores, large=True)
    try:
        assert threads == 4
        assert cores.threads_for(large=True) == 2  # only its own share is left
        cores.release()
    finally:
        done.set()
        process.join(30)


def test_a_worker_killed_mid_request_gives_its_cores_back():
    cores = CoreShare(cores=2, workers=2)
    process, threads, _ = start_holder(cores, large=True)
    assert threads == 2
    assert cores.threads_for(large=True) == 1
    cores.release()
    os.kill(process.pid, signal.SIGKILL)
    process.join(30)
    assert cores.threads_for(large=True) == 2
    cores.release()


def test_torch_runs_the_block_on_the_granted_threads():
    before = torch.get_num_threads()
    try:
        cores = CoreShare(cores=2, workers=2)
        with cores.torch_threads(large=False) as threads:
            assert threads == 1 and torch.get_num_threads() == 1
        with cores.torch_threads(large=True) as threads:
            assert threads == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("large", [False, True])
def test_a_request_that_fails_still_releases_its_threads(large):
    cores = CoreShare(cores=2, workers=1)
    with pytest.raises(ValueError), cores.torch_threads(large):
        raise ValueError("bad request")
    process, threads, done = start_holder(cores, large=True)
    done.set()
    process.join(30)
    assert threads == 2
