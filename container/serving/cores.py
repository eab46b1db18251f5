"""The machine's cores, shared out among the model server's worker processes.

Each worker serves on its share, cores ÷ workers threads, so that workers × threads fits the
cores; the count is set as torch's, and the serving model's ONNX Runtime session follows it.
A large batch also takes the cores that no other worker is using at that moment, so
one request of many images runs on the whole machine while the other workers are idle, and
never on more cores than the machine has. The table of who uses how many lives in shared memory
made before the workers fork (multi-model-server's preload_model), so every worker sees it; a
worker that dies mid-request is noticed by its process ID and its threads given back.
"""

import contextlib
import ctypes
import multiprocessing
import os

import torch


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, under another user
        return True
    return True


class CoreShare:
    def __init__(self, cores, workers, slots=64):
        self.cores = cores
        self.share = max(1, cores // workers)
        self._lock = multiprocessing.Lock()
        self._pids = multiprocessing.RawArray(ctypes.c_int, slots)  # 0: a free slot
        self._threads = multiprocessing.RawArray(ctypes.c_int, slots)  # in use now, per slot
        self._slot, self._slot_pid = None, None

    def _my_slot(self):
        """This process's row of the table, claimed at its first request."""
        pid = os.getpid()
        if self._slot_pid != pid:
            with self._lock:
                free = [i for i, p in enumerate(self._pids) if p in (0, pid) or not _alive(p)]
                self._slot = free[0] if free else None  # no row: serve on the share alone
                if self._slot is not None:
                    self._pids[self._slot], self._threads[self._slot] = pid, 0
            self._slot_pid = pid
        return self._slot

    def _idle_cores(self, slot):
        busy = 0
        for i, threads in enumerate(self._threads):
            if i == slot or not threads:
                continue
            if _alive(self._pids[i]):
                busy += threads
            else:  # killed mid-request: its cores are free again
                self._pids[i] = self._threads[i] = 0
        return self.cores - busy

    def threads_for(self, large):
        """How many threads this process's next request runs on; it holds them until
        release(). ``large``: a batch that more threads make faster."""
        slot = self._my_slot()
        threads = self.share
        if slot is not None:
            if large:
                with self._lock:
                    threads = max(self.share, self._idle_cores(slot))
                    self._threads[slot] = threads
            else:
                self._threads[slot] = threads
        return threads

    def release(self):
        if self._slot is not None and self._slot_pid == os.getpid():
            self._threads[self._slot] = 0

    @contextlib.contextmanager
    def torch_threads(self, large):
        """Runs the block on the threads threads_for() grants."""
        threads = self.threads_for(large)
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        try:
            yield threads
        finally:
            self.release()
