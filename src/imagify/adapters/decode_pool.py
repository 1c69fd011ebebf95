"""Decoding untrusted images in worker processes that can be killed and replaced.

Every decode is admitted by its estimated bytes against a memory budget for this process
(the rest wait their turn), runs in a pebble worker process that is killed when it passes
the wall-time budget, under an address-space rlimit, niced so the API wins the CPU.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

T = TypeVar("T")
WORKER_NICE = 5
# Room in a worker's address space beyond one decode's pixels: resize and encode buffers,
# libjpeg's and zlib's working memory, allocator slack.
WORKER_HEADROOM = 256 * 1024 * 1024
# Imported once by the fork server, so a replaced worker starts in milliseconds.
_PRELOAD = ["imagify.adapters.pillow_render", "imagify.adapters.pillow"]


class OverBudget(Exception):
    """The decode's estimate alone is more than the whole memory budget."""


class Busy(Exception):
    """The memory budget stayed full for the whole wall-time budget."""


class TimedOut(Exception):
    """The decode passed its wall-time budget; its worker was killed and replaced."""


class WorkerDied(Exception):
    """The worker process died mid-decode (killed, or out of memory); it was replaced."""


class MemoryBudget:
    """Bytes of decoded pixels this process may hold at once; decodes wait for room."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.largest = 0  # the largest estimate admitted so far
        self._room = threading.Condition()

    def check(self, estimate: int) -> None:
        """Raise OverBudget when a decode of `estimate` bytes could never be admitted."""
        if estimate > self.total:
            raise OverBudget(
                f"decoding it needs about {estimate // 2**20} MiB, more than the "
                f"{self.total // 2**20} MiB decode memory budget"
            )

    @contextmanager
    def admit(self, estimate: int, wait: float) -> Iterator[None]:
        self.check(estimate)
        with self._room:
            if not self._room.wait_for(lambda: self.used + estimate <= self.total, wait):
                raise Busy("the server is busy decoding other images; try again shortly")
            self.used += estimate
            self.largest = max(self.largest, estimate)
        try:
            yield
        finally:
            with self._room:
                self.used -= estimate
                self._room.notify_all()


def _start_worker(allowance: int) -> None:
    os.nice(WORKER_NICE)
    # Above what the interpreter has mapped already (Python, Pillow and their libraries).
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (mapped + allowance, mapped + allowance))


def _ready() -> int:
    return os.getpid()


class DecodePool:
    """A bounded, warm pool of decoding processes behind a memory budget."""

    def __init__(
        self, workers: int, timeout: float, memory_bytes: int, worker_memory_bytes: int = 0
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self.timeout = timeout
        self.budget = MemoryBudget(memory_bytes)
        # One decode as large as the whole budget fits in a worker, with room to resize it.
        self._worker_memory = worker_memory_bytes or memory_bytes + WORKER_HEADROOM
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()

    def run(self, function: Callable[..., T], *args: Any, estimate: int) -> T:
        """function(*args) in a worker; raises what it raised, or OverBudget, Busy,
        TimedOut, WorkerDied."""
        with self.budget.admit(estimate, self.timeout):
            future = self._started().schedule(function, args=args, timeout=self.timeout)
            try:
                return future.result()  # type: ignore[no-any-return]
            except FutureTimeout:
                raise TimedOut(f"took longer than {self.timeout:g} s") from None
            except ProcessExpired as e:
                raise WorkerDied(f"its worker process died ({e})") from None

    def start(self) -> None:
        """Start every worker now, so the first decodes do not pay for it."""
        pool = self._started()
        for future in [pool.schedule(_ready) for _ in range(self.workers * 2)]:
            future.result()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join()

    def _started(self) -> ProcessPool:
        with self._lock:
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")
                # Workers fork from a small clean server, not from this threaded process.
                context.set_forkserver_preload(_PRELOAD)
                self._pool = ProcessPool(
                    max_workers=self.workers,
                    initializer=_start_worker,
                    initargs=(self._worker_memory,),
                    context=context,
                )
            return self._pool
