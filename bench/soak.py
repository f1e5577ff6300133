"""Soak: a steady rate through the whole mesh for a long time, reporting memory over time.

    .venv/bin/python bench/soak.py [--rate 100] [--minutes 30] [--every 60]

Starts its own services (as bench_e2e.py does), sends requests at the fixed rate in one-minute
slices, and prints, every ``--every`` seconds, each service's resident memory, the requests
answered 202 so far, those refused or failed, and how far the mesh lags behind (accepted but not
yet in oversight). A leak shows as memory that keeps climbing while the lag stays flat. At the
end it waits up to a minute for the lag to drain, says whether every accepted request arrived and
how the others were answered (a 503 with Retry-After is intake's answer to a stall, which a channel
adapter retries), and exits non-zero if an accepted request did not arrive.
"""

import argparse
import asyncio
import os
import random
import sys
import time

import asyncpg
import psutil

sys.path.insert(0, os.path.dirname(__file__))
from bench_e2e import Stamps, load, start_mesh  # noqa: E402
from common import drop_database  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--every", type=float, default=60)
    args = parser.parse_args()
    mesh, oversight_dsn, extra, databases = await start_mesh(1)
    procs = {n: psutil.Process(p.pid) for n, p in mesh.procs.items() if n not in ("district", "gateways")}
    stamps, rng = Stamps(), random.Random(1022)
    db = await asyncpg.connect(oversight_dsn)
    print(f"soak: {args.rate:g} req/s for {args.minutes:g} min; RSS in MiB")
    print("  minute  " + "  ".join(f"{n:>9}" for n in procs) + "   accepted  not 202   lag")
    started = time.monotonic()
    next_report = started
    try:
        while time.monotonic() - started < args.minutes * 60:
            await load(mesh.url("intake") + "/v1/channels/web/requests", args.rate, min(args.every, 60), stamps, rng)
            if time.monotonic() >= next_report:
                visible = await db.fetchval("SELECT count(*) FROM cases")
                rss = "  ".join(f"{p.memory_info().rss / 2**20:9.0f}" for p in procs.values())
                minute = (time.monotonic() - started) / 60
                print(f"  {minute:6.1f}  {rss}   {len(stamps.accepted):8d}  {sum(stamps.errors.values()):7d}"
                      f"  {len(stamps.accepted) - visible:5d}", flush=True)
                next_report += args.every
        drained_by = time.monotonic() + 60
        while (visible := await db.fetchval("SELECT count(*) FROM cases")) < len(stamps.accepted) \
                and time.monotonic() < drained_by:
            await asyncio.sleep(0.5)
    finally:
        await db.close()
        for proc in extra:
            proc.terminate()
        mesh.stop_all()
        for name in databases:
            await drop_database(name)
    print(f"  {len(stamps.accepted)} accepted, {visible} of them in oversight;"
          f" not accepted: {stamps.errors or 'none'}")
    if visible < len(stamps.accepted):
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
