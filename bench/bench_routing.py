"""Routing decisions per second of the pure ``route()``, over the routing test set, per edition.

    .venv/bin/python bench/bench_routing.py [--rounds 20]

"setup" is the one-off cost of the first decision in a process (reading the place names and the
directory). "cold" routes every address of the test set once with the address caches empty — each
address read from scratch, as a stream of new requests is. "warm" routes the set again and again
with the caches filled — as repeated addresses (the same building, a replayed case) are.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere, as a plain script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="warm passes over the test set")
    args = parser.parse_args()

    from services.router import addressing
    from services.router.directory import load_directory
    from services.router.routing import load_rules, route

    cases = [json.loads(line) for line in (ROOT / "tests/data/addresses.jsonl").read_text("utf-8").splitlines()
             if line.strip()]
    rules = load_rules()
    started = time.perf_counter()
    route("Phường 1, Quận 3", "water", load_directory("hcmc-2021"), rules)
    print(f"setup (first decision in the process): {time.perf_counter() - started:.2f} s")
    for edition in ("hcmc-2021", "hcmc-2025"):
        directory = load_directory(edition)
        batch = [(c["address"], c["category"]) for c in cases if c["edition"] == edition]

        def once() -> float:
            t = time.perf_counter()
            for address, category in batch:
                route(address, category, directory, rules)
            return time.perf_counter() - t

        addressing._resolve.cache_clear()
        addressing._library.cache_clear()
        cold = once()
        warm = min(once() for _ in range(args.rounds))  # best pass: the least disturbed by the machine
        print(f"{edition}: {len(batch)} addresses | cold {len(batch) / cold:,.0f} decisions/s "
              f"({cold / len(batch) * 1e3:.2f} ms each) | warm {len(batch) / warm:,.0f} decisions/s "
              f"({warm / len(batch) * 1e6:.1f} µs each)")


if __name__ == "__main__":
    main()
