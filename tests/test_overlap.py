"""Work beside the main thread: same items, same order, errors where they belong, bounded lead."""

from __future__ import annotations

import threading
import time

import pytest

from kmtalk_cli.overlap import ahead, beside


def test_items_arrive_in_order_made_in_another_thread():
    made_in = set()

    def items():
        for i in range(20):
            made_in.add(threading.current_thread().name)
            yield i

    assert list(ahead(items(), depth=2)) == list(range(20))
    assert made_in == {"kmtalk-ahead"}


def test_an_error_arrives_after_the_items_made_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("window 3 failed")

    got = []
    with pytest.raises(ValueError, match="window 3"):
        for item in ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_the_worker_stays_at_most_depth_plus_one_ahead_and_stops_with_the_consumer():
    made, closed_in = [], []

    def items():
        try:
            for i in range(1000):
                made.append(i)
                yield i
        finally:
            closed_in.append(threading.current_thread().name)

    stream = ahead(items(), depth=2)
    assert next(stream) == 0
    time.sleep(0.3)
    assert len(made) <= 1 + 2 + 1  # the one taken, two queued, one waiting for room
    stream.close()
    assert len(made) <= 5 and not [t for t in threading.enumerate() if t.name == "kmtalk-ahead"]
    assert closed_in == ["kmtalk-ahead"]


def test_beside_returns_the_result_or_raises_the_error():
    assert beside(lambda: 6 * 7).result(timeout=10) == 42
    with pytest.raises(ZeroDivisionError):
        beside(lambda: 1 / 0).result(timeout=10)
