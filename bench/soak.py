"""Soak: a steady rate through the whole mesh for a long time, reporting memory over time.

    .venv/bin/python bench/soak.py [--rate 100] [--minutes 30] [--every 60] [--heap]

Starts its own services (as bench_e2e.py does), sends requests at the fixed rate in one-minute
slices, and prints, every ``--every`` seconds, each service's resident memory, the requests
answered 202 so far, those refused or failed, and how far the mesh lags behind (accepted but not
yet in oversight), and what PostgreSQL did in the interval: the WAL it wrote per request accepted,
the full-page images in it per request, and the checkpoints it started. A leak shows as memory
that keeps climbing while the lag stays flat. At the
end it waits up to a minute for the lag to drain, says whether every accepted request arrived and
how the others were answered (a 503 with Retry-After is intake's answer to a stall, which a channel
adapter retries), and exits non-zero if an accepted request did not arrive.

With ``--heap`` the services trace their allocations (``MESH_HEAP_DIR``, contracts/runtime.py);
the soak asks each for a snapshot a third of the way in and again at the end, and prints, per
service, where the memory traced between the two grew most. Tracing costs the services CPU, so
the figures of such a run are not comparable with the others'.
"""

import argparse
import asyncio
import os
import random
import shutil
import signal
import sys
import time
import tracemalloc
from pathlib import Path

import asyncpg
import psutil

sys.path.insert(0, os.path.dirname(__file__))
from bench_e2e import Stamps, load, start_mesh  # noqa: E402
from common import ADMIN_DSN, ROOT, drop_database  # noqa: E402

# Not the tracing's own work, nor the import system's.
NOT_THE_SERVICES = [tracemalloc.Filter(False, pattern)
                    for pattern in (tracemalloc.__file__, "<frozen importlib._bootstrap*>", "<unknown>")]


async def snapshot(procs: dict[str, psutil.Process], directory: Path) -> dict[str, Path]:
    """Ask each service for a heap snapshot; the path of each, once it is written."""
    before = set(directory.iterdir())
    for proc in procs.values():
        proc.send_signal(signal.SIGUSR1)
    for _ in range(600):
        written = {p for p in set(directory.iterdir()) - before if p.suffix == ".heap"}
        if len(written) == len(procs):
            return {p.name.split("-")[0]: p for p in written}
        await asyncio.sleep(0.5)
    raise RuntimeError(f"only {len(written)} of {len(procs)} heap snapshots written in 300 s")


def report_growth(first: dict[str, Path], last: dict[str, Path], top: int = 6) -> None:
    for service in first:
        old, new = (tracemalloc.Snapshot.load(str(s[service])).filter_traces(NOT_THE_SERVICES) for s in (first, last))
        grown = sum(stat.size_diff for stat in new.compare_to(old, "filename"))
        print(f"  {service}: traced memory {sum(t.size for t in new.traces) / 2**20:.1f} MiB,"
              f" {grown / 2**20:+.2f} MiB since the first snapshot; where it grew most:")
        for stat in new.compare_to(old, "traceback")[:top]:
            print(f"    {stat.size_diff / 2**10:+9.0f} KiB in {stat.count_diff:+7d} blocks, allocated at:")
            for frame in list(stat.traceback)[::-1][:4]:  # the most recent calls
                print(f"      {short(frame.filename)}:{frame.lineno}")


async def postgres_counters(conn: asyncpg.Connection) -> tuple[float, float, int]:
    """WAL bytes, the full-page images among its records and checkpoints, since statistics reset."""
    # PostgreSQL 17 moved the checkpoint counts to a view of their own.
    checkpoints = ("SELECT num_timed + num_requested FROM pg_stat_checkpointer"
                   if int(await conn.fetchval("SHOW server_version_num")) >= 170000 else
                   "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")
    row = await conn.fetchrow(f"SELECT wal_bytes, wal_fpi, ({checkpoints}) AS checkpoints FROM pg_stat_wal")
    return float(row["wal_bytes"]), float(row["wal_fpi"]), int(row["checkpoints"])


def short(filename: str) -> str:
    return filename.split("site-packages/")[-1].removeprefix(str(ROOT) + "/")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--every", type=float, default=60)
    parser.add_argument("--heap", action="store_true", help="compare the services' heaps a third of the way in and at the end")
    args = parser.parse_args()
    heap_dir = ROOT / ".local" / "bench" / f"heap-{os.getpid()}"
    if args.heap:
        heap_dir.mkdir(parents=True, exist_ok=True)
        os.environ["MESH_HEAP_DIR"] = str(heap_dir)
    first_heap: dict[str, Path] = {}
    mesh, oversight_dsn, extra, databases = await start_mesh(1)
    procs = {n: psutil.Process(p.pid) for n, p in mesh.procs.items() if n not in ("district", "gateways")}
    stamps, rng = Stamps(), random.Random(1022)
    db = await asyncpg.connect(oversight_dsn)
    admin = await asyncpg.connect(ADMIN_DSN)
    settings = {r["name"]: r["setting"] + (r["unit"] or "") for r in await admin.fetch(
        "SELECT name, setting, unit FROM pg_settings"
        " WHERE name IN ('max_wal_size', 'checkpoint_timeout', 'wal_compression', 'fsync')")}
    print(f"soak: {args.rate:g} req/s for {args.minutes:g} min; RSS in MiB;"
          f" PostgreSQL {', '.join(f'{k}={v}' for k, v in sorted(settings.items()))}")
    print("  minute  " + "  ".join(f"{n:>9}" for n in procs)
          + "   accepted  not 202   lag  WAL KiB/req  images/req  checkpoints")
    counters, accepted_before = await postgres_counters(admin), 0
    started = time.monotonic()
    next_report = started
    try:
        while time.monotonic() - started < args.minutes * 60:
            await load(mesh.url("intake") + "/v1/channels/web/requests", args.rate, min(args.every, 60), stamps, rng)
            if time.monotonic() >= next_report:
                visible = await db.fetchval("SELECT count(*) FROM cases")
                rss = "  ".join(f"{p.memory_info().rss / 2**20:9.0f}" for p in procs.values())
                minute = (time.monotonic() - started) / 60
                now = await postgres_counters(admin)
                wal, images, checkpoints = (b - a for a, b in zip(counters, now))
                requests = max(1, len(stamps.accepted) - accepted_before)
                counters, accepted_before = now, len(stamps.accepted)
                print(f"  {minute:6.1f}  {rss}   {len(stamps.accepted):8d}  {sum(stamps.errors.values()):7d}"
                      f"  {len(stamps.accepted) - visible:5d}  {wal / requests / 1024:11.1f}  {images / requests:10.1f}"
                      f"  {checkpoints:11d}", flush=True)
                next_report += args.every
                if args.heap and not first_heap and minute >= args.minutes / 3:
                    first_heap = await snapshot(procs, heap_dir)
        drained_by = time.monotonic() + 60
        while (visible := await db.fetchval("SELECT count(*) FROM cases")) < len(stamps.accepted) \
                and time.monotonic() < drained_by:
            await asyncio.sleep(0.5)
        last_heap = await snapshot(procs, heap_dir) if first_heap else {}
    finally:
        await db.close()
        await admin.close()
        for proc in extra:
            proc.terminate()
        mesh.stop_all()
        for name in databases:
            await drop_database(name)
    print(f"  {len(stamps.accepted)} accepted, {visible} of them in oversight;"
          f" not accepted: {stamps.errors or 'none'}")
    if last_heap:
        report_growth(first_heap, last_heap)
    if args.heap:
        shutil.rmtree(heap_dir)
    if visible < len(stamps.accepted):
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
