"""How each service's Python process settles once it has started.

Start-up leaves tens of megabytes of objects that live as long as the process: the directory and
the gazetteer, compiled schemas and validators, the web framework's routes. Python's cyclic
collector walked all of them on every full collection, and ran its young collection every 700
allocations: at 200 requests/s that was 14 % of intake's CPU and 17 % of the notifier's, each full
collection a pause for every request in flight. Frozen, the start-up objects are never walked
again; the requests' own objects are freed by reference counting, so the young collection can run
every 20,000 allocations instead.
"""

import asyncio
import contextlib
import gc
import os
import signal
import sys
import threading
import time
import tracemalloc
from functools import cache


@cache  # once a process: an app started again in the same process (the tests) leaves it as it is
def settle_heap() -> None:
    """Call once the service has started, before it takes traffic."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def report_tasks_on_signal() -> None:
    """SIGUSR2 writes where every asyncio task is waiting into the service's log: for a process
    that was asked to stop and did not (the fault tests send it before they kill one).

    Only a process's main thread can take signals: a service run on another thread (the
    integration tests run them so) goes without."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()

    def report() -> None:
        for task in asyncio.all_tasks(loop):
            print(f"--- task {task.get_name()}", file=sys.stderr)
            task.print_stack(file=sys.stderr)
        sys.stderr.flush()

    loop.add_signal_handler(signal.SIGUSR2, report)


def snapshot_heap_on_signal(service: str) -> None:
    """With ``MESH_HEAP_DIR`` set, trace the process's allocations from here on, and on SIGUSR1
    write a snapshot of them to ``<dir>/<service>-<pid>-<unix time>.heap``: for telling a slow leak
    from caches still filling (``bench/soak.py --heap`` compares two). Off by default: tracing
    every allocation costs a service a good part of its CPU.

    Main thread only, as ``report_tasks_on_signal``."""
    directory = os.environ.get("MESH_HEAP_DIR")
    if not directory or threading.current_thread() is not threading.main_thread():
        return
    tracemalloc.start(int(os.environ.get("MESH_HEAP_FRAMES", "8")))

    def dump() -> None:
        path = os.path.join(directory, f"{service}-{os.getpid()}-{time.time():.0f}.heap")
        tracemalloc.take_snapshot().dump(path + ".part")
        os.replace(path + ".part", path)  # whoever reads the directory never sees half a snapshot

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)


async def wait_a_while(event: asyncio.Event, seconds: float) -> None:
    """Until ``event`` is set or ``seconds`` have passed.

    Not ``asyncio.wait_for(event.wait(), seconds)``: on Python 3.11 it drops a cancellation that
    arrives as the event is set (CPython gh-86296), and a loop waiting that way — the outbox relay,
    woken by every batch — runs on after the service was told to stop.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
