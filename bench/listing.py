"""List latency with 100 000 images owned by the user against 1 000, and statements per request."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, insert

from bench.common import Options, Report, Target, server, wrk
from bench.fixtures import deployment
from bench.http import PAGE, serve_args

BATCH = 20_000


def bulk_images(engine, owner_id: int, count: int) -> None:  # type: ignore[no-untyped-def]
    """Rows only (listing never reads the blobs), inserted in big executemany batches."""
    from imagify.adapters.sql.tables import images

    start = datetime(2020, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        for first in range(0, count, BATCH):
            connection.execute(insert(images), [
                {"id": secrets.token_hex(16), "owner_id": owner_id, "filename": f"photo-{n}.jpg",
                 "content_type": "image/jpeg", "width": 4000, "height": 3000, "size_bytes": 5_000_000,
                 "sha256": "0" * 64, "storage_key": f"originals/bulk{n}", "created_at": start + timedelta(seconds=n)}
                for n in range(first, min(count, first + BATCH))
            ])  # fmt: skip


def prepare(dep, rows: int) -> tuple[dict[str, str], int]:  # type: ignore[no-untyped-def]
    """Owner with `rows` images and a bearer token; also the SQL statements one listing runs."""
    from litestar.testing import TestClient

    from bench.fixtures import PASSWORD
    from imagify.entrypoints.container import build_container, shutdown
    from imagify.entrypoints.http.app import create_app

    container = build_container(dep.settings())
    try:
        container.admin().create_user("bench", "bench", PASSWORD, ["enterprise"], False)
        with container.uow()() as uow:
            user = uow.users.get_by_username("bench")
        bulk_images(container.engine(), user.id, rows)
        token = container.signer().issue(user.id, 0, container.clock().now())[0]
        headers = {"Authorization": f"Bearer {token}"}
        statements: list[str] = []
        with TestClient(create_app(container)) as client:
            client.get(f"/api/v1/images?limit={PAGE}", headers=headers)
            record = lambda *args: statements.append(args[2])  # noqa: E731
            event.listen(container.engine(), "before_cursor_execute", record)
            response = client.get(f"/api/v1/images?limit={PAGE}", headers=headers)
            event.remove(container.engine(), "before_cursor_execute", record)
            assert response.status_code == 200 and len(response.json()["items"]) == PAGE
    finally:
        shutdown(container)
    return headers, len(statements)


def run(report: Report, options: Options, workdir: Path) -> None:
    small, large = options.rows_small, options.rows_large
    with deployment("list-small", workdir) as dep_small, deployment("list-large", workdir) as dep_large:
        # The database path itself: with the read cache on, every repeat would be a memory hit.
        for dep in (dep_small, dep_large):
            dep.env["IMAGIFY_READ_CACHE"] = "off"
        headers_small, statements_small = prepare(dep_small, small)
        headers_large, statements_large = prepare(dep_large, large)
        log = workdir / "listing-server.log"
        url = f"/api/v1/images?limit={PAGE}"
        with server(serve_args(1), dep_small.env, "/health/live", log) as a, \
                server(serve_args(1), dep_large.env, "/health/live", log) as b:  # fmt: skip
            # One connection: latency without queueing. Best of two rounds each, in turn.
            runs_small, runs_large = [], []
            for _ in range(2):
                runs_small.append(wrk(a + url, options, headers_small, connections=1))
                runs_large.append(wrk(b + url, options, headers_large, connections=1))
    s = min(runs_small, key=lambda load: load.p50_ms)
    big = min(runs_large, key=lambda load: load.p50_ms)
    ratio = big.p50_ms / s.p50_ms
    report.figure("listing", f"GET /api/v1/images ({PAGE} items), owner of {small:,} images", s.text(),
                  f"{statements_small} SQL statements per request")  # fmt: skip
    report.figure("listing", f"GET /api/v1/images ({PAGE} items), owner of {large:,} images", big.text(),
                  f"{statements_large} SQL statements per request")  # fmt: skip
    constant = statements_small == statements_large
    report.target(Target(
        f"GET /api/v1/images latency (p50, 1 connection), {large:,} images", f"{small:,} images",
        "<= 1.2x, and constant SQL statements", ratio, ratio <= 1.2 and constant,
        f"{big.p50_ms:.2f} ms vs {s.p50_ms:.2f} ms; {statements_large} vs {statements_small} statements",
    ))  # fmt: skip
