"""SQLite writers of one process queue on a fair lock, not in SQLite's busy handler."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text

from imagify.adapters.sql.sqlite_gate import FairLock, gated_connection_class
from imagify.adapters.sql.unit_of_work import make_engine


def test_the_fair_lock_goes_to_its_waiters_in_the_order_they_came():
    lock, order = FairLock(), []
    assert lock.acquire(timeout=1)
    threads = []
    for n in range(5):
        def wait(n: int = n) -> None:
            assert lock.acquire(timeout=10)
            order.append(n)
            lock.release()
        threads.append(threading.Thread(target=wait))
        threads[-1].start()
        time.sleep(0.05)  # each is queued before the next arrives
    lock.release()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]


def test_a_waiter_whose_time_runs_out_leaves_the_queue_and_the_lock_still_works():
    lock = FairLock()
    assert lock.acquire(timeout=1)
    assert not lock.acquire(timeout=0.05)
    lock.release()
    assert lock.acquire(timeout=0.05)
    lock.release()


def test_concurrent_writers_all_commit_and_a_reader_never_waits_for_them(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gate.db'}")
    with engine.begin() as db:
        db.execute(text("CREATE TABLE t (n INTEGER)"))

    def write(n: int) -> None:
        with engine.begin() as db:
            db.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(400)))
    with engine.connect() as db:
        assert db.execute(text("SELECT count(*) FROM t")).scalar() == 400
        with engine.begin() as writer:  # holds the gate and SQLite's write lock
            writer.execute(text("INSERT INTO t VALUES (-1)"))
            started = time.perf_counter()
            assert db.execute(text("SELECT count(*) FROM t")).scalar() == 400
            assert time.perf_counter() - started < 0.5
    engine.dispose()


def test_a_second_write_connection_in_the_same_thread_gives_up_instead_of_hanging(tmp_path):
    connect = gated_connection_class(wait_seconds=0.2)
    first = sqlite3.connect(tmp_path / "self.db", factory=connect, timeout=0.2)
    first.execute("CREATE TABLE t (n INTEGER)")
    first.commit()
    second = sqlite3.connect(tmp_path / "self.db", factory=connect, timeout=0.2)
    first.execute("INSERT INTO t VALUES (1)")
    started = time.perf_counter()
    try:
        second.execute("INSERT INTO t VALUES (2)")
        raise AssertionError("the second writer should have found the database locked")
    except sqlite3.OperationalError as error:
        assert "locked" in str(error)
    assert time.perf_counter() - started < 5
    first.commit()
    second.execute("INSERT INTO t VALUES (2)")  # the gate was given back after the failure
    second.commit()
    assert first.execute("SELECT count(*) FROM t").fetchone()[0] == 2
    first.close()
    second.close()
