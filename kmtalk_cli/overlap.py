"""Work beside the main thread: the model makes the next window while this one is gated and written.

Torch and NumPy release the GIL inside their large operations, so on two cores a thread that
completes windows and the main thread that gates, adds liveliness to and writes the previous
one run at the same time. :func:`ahead` runs an iterator in a worker thread at most ``depth``
items ahead of its consumer (memory stays bounded); :func:`beside` runs one function in a
thread while the caller does something else. Errors reach the caller where they would have
without the thread, and a consumer that stops early stops the worker.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_DONE = object()


def ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """The items of ``items``, made in a worker thread at most ``depth`` ahead of the consumer."""
    box: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(box, (True, item), stop):
                    return
            _put(box, (True, _DONE), stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            _put(box, (False, exc), stop)
        finally:  # a generator left early is closed here, in the thread whose state (torch's modes) it set up
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="kmtalk-ahead", daemon=True)
    worker.start()
    try:
        while True:
            ok, item = box.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        worker.join()


def _put(box: queue.Queue, entry: tuple[bool, Any], stop: threading.Event) -> bool:
    """Put ``entry`` once there is room; False if the consumer stopped first."""
    while not stop.is_set():
        try:
            box.put(entry, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def beside(function: Callable[[], T]) -> Future[T]:
    """``function()`` started in a (daemon) thread; ``.result()`` waits for it and raises what it raised."""
    future: Future[T] = Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(function())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised by result()
                future.set_exception(exc)

    threading.Thread(target=run, name="kmtalk-beside", daemon=True).start()
    return future
