"""Worker processes that never outlive the nhiwatch process that started them.

A parser pool's workers block on a pipe; when their parent is killed with SIGKILL nothing tells them,
and each would stay alive holding its memory (and the multiprocessing resource tracker with it).
Every pool is therefore made here: each worker asks the kernel for SIGKILL when its parent dies
(Linux), and also watches its parent's pid, which covers other systems and a parent that is
replaced between fork and the first check."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.5


def _die_with(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher thread below still ends the worker
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)

    def watch() -> None:
        while True:
            threading.Event().wait(_POLL_SECONDS)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="nhiwatch-parent-watch", daemon=True).start()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool (spawned, not forked: the parent holds DuckDB and threads) whose workers end
    when this process ends, however it ends."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with, initargs=(os.getpid(),))
