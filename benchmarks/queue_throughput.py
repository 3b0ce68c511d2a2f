"""Queue throughput and wake-up latency: SQLite vs PostgreSQL (polling) vs PostgreSQL (LISTEN/NOTIFY).

    .venv/bin/python benchmarks/queue_throughput.py --quick
    .venv/bin/python benchmarks/queue_throughput.py --database-url postgresql://postgres@127.0.0.1/test

Workers are threads, each with its own queue client (its own connection), running the claim →
complete cycle of the real worker without a handler. Two measurements per backend and worker count:

* claims/s: N tasks are queued up front; workers claim and complete until the queue is empty.
* enqueue→claim latency: workers are idle; one task at a time is enqueued (after a short random gap)
  and the time until a worker holds it is recorded. Idle workers either poll every `--poll-s`
  (the worker's `poll_min_s` default, before its back-off) or block in `wait_for_work` (NOTIFY).

PostgreSQL runs in a throw-away schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from headless_wan.domain.tasks import NewTask, TaskResult
from headless_wan.queue.base import QueueClient

Factory = Callable[[], QueueClient]
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Result:
    backend: str
    workers: int
    claims_per_s: float
    latency_ms_p50: float
    latency_ms_p95: float


# --- backends --------------------------------------------------------------------------------


def sqlite_factory(folder: Path) -> Factory:
    from headless_wan.queue.sqlite import SqliteQueue

    path = folder / f"bench-{uuid.uuid4().hex[:8]}.sqlite3"
    return lambda: SqliteQueue(path)


def postgres_factory(dsn: str, schema: str, notify: bool) -> Factory:
    from headless_wan.queue.postgres import PostgresQueue

    PostgresQueue(dsn, schema=schema).migrate()
    return lambda: PostgresQueue(dsn, schema=schema, notify=notify, pool_min=1, pool_max=2)


def drop_schema(dsn: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# --- measurements ----------------------------------------------------------------------------


def _opened(factory: Factory) -> QueueClient:
    queue = factory()
    queue.open()
    return queue


def claims_per_second(factory: Factory, workers: int, tasks: int) -> float:
    producer = _opened(factory)
    for n in range(tasks):
        producer.enqueue(NewTask("bench", {"n": n}))
    producer.close()
    clients = [_opened(factory) for _ in range(workers)]
    start = threading.Barrier(workers + 1)

    def drain(queue: QueueClient) -> None:
        start.wait()
        while (claim := queue.claim("bench-worker")) is not None:
            queue.complete(claim, TaskResult(message="ok"))

    threads = [threading.Thread(target=drain, args=(q,)) for q in clients]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for queue in clients:
        queue.close()
    return tasks / elapsed


def wake_latencies(factory: Factory, workers: int, samples: int, poll_s: float) -> list[float]:
    clients = [_opened(factory) for _ in range(workers)]
    stop = threading.Event()
    claimed: dict[str, threading.Event] = {}
    latencies: list[float] = []
    lock = threading.Lock()

    wakes = [threading.Event() for _ in clients]  # as in the worker loop: set on stop, and by the queue

    def consume(queue: QueueClient, wake: threading.Event) -> None:
        wait_for_work = getattr(queue, "wait_for_work", None)
        while not stop.is_set():
            claim = queue.claim("bench-worker")
            if claim is None:
                wake.clear()
                if stop.is_set():
                    break
                if wait_for_work is not None:  # PostgreSQL: NOTIFY, or a plain wait with notify off
                    wait_for_work(poll_s, wake)
                else:
                    wake.wait(poll_s)
                continue
            with lock:
                latencies.append(time.time() - claim.task.params["t"])
            queue.complete(claim, TaskResult(message="ok"))
            claimed[claim.id].set()

    threads = [
        threading.Thread(target=consume, args=(q, w), daemon=True)
        for q, w in zip(clients, wakes, strict=True)
    ]
    for thread in threads:
        thread.start()
    producer = _opened(factory)
    rng = random.Random(7)
    for _ in range(samples):
        stop.wait(rng.uniform(0.03, 0.12))  # let the workers go idle again
        task = NewTask("bench", {"t": 0.0})
        claimed[task.id] = threading.Event()
        producer.enqueue(NewTask("bench", {"t": time.time()}, id=task.id))
        if not claimed[task.id].wait(30):
            raise RuntimeError("a task was not claimed within 30 s")
    stop.set()
    for wake in wakes:
        wake.set()
    for thread in threads:
        thread.join(timeout=10)
    for queue in [producer, *clients]:
        queue.close()
    return latencies


def measure(name: str, make: Callable[[], Factory], workers: int, args: argparse.Namespace) -> Result:
    rate = claims_per_second(make(), workers, args.tasks)
    lat = sorted(wake_latencies(make(), workers, args.samples, args.poll_s))
    p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
    return Result(name, workers, rate, statistics.median(lat) * 1000, p95 * 1000)


# --- main ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    schemas: list[str] = []

    def pg(notify: bool) -> Callable[[], Factory]:
        def make() -> Factory:
            schema = f"hw_bench_{uuid.uuid4().hex[:10]}"
            schemas.append(schema)
            return postgres_factory(args.database_url, schema, notify)

        return make

    with tempfile.TemporaryDirectory() as folder:
        backends: list[tuple[str, Callable[[], Factory]]] = [("sqlite", lambda: sqlite_factory(Path(folder)))]
        if not args.no_postgres:
            backends += [("postgres (poll)", pg(False)), ("postgres (notify)", pg(True))]
        try:
            for name, make in backends:
                for workers in args.workers:
                    result = measure(name, make, workers, args)
                    print(f"  measured {name:18} x{workers:<2}", file=sys.stderr)
                    results.append(result)
        finally:
            for schema in schemas:
                drop_schema(args.database_url, schema)
    return results


def print_table(results: list[Result], poll_s: float) -> None:
    base = results[0]
    print(
        f"\nBaseline: {base.backend} with {base.workers} worker(s). Polling workers poll every {poll_s} s.\n"
    )
    header = f"{'backend':18} {'workers':>7} {'claims/s':>9} {'x base':>7} {'wake p50 ms':>12} {'p95 ms':>8} {'x base':>7}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.backend:18} {r.workers:>7} {r.claims_per_s:>9.0f} {r.claims_per_s / base.claims_per_s:>7.2f} "
            f"{r.latency_ms_p50:>12.1f} {r.latency_ms_p95:>8.1f} {r.latency_ms_p50 / base.latency_ms_p50:>7.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer tasks and samples (well under 2 min)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HW_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or DEFAULT_DSN,
        help="PostgreSQL DSN (default: HW_TEST_DATABASE_URL, DATABASE_URL, or the local test database)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--poll-s", type=float, default=0.5, help="idle poll interval of polling workers")
    args = parser.parse_args()
    args.tasks, args.samples = (300, 12) if args.quick else (2000, 40)
    print_table(run(args), args.poll_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
