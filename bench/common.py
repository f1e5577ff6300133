"""What the benchmarks share: where Kafka and PostgreSQL are, fresh databases, consumer groups
parked at the end of a topic, a process's CPU, percentiles, and realistic requests."""

import os
import random
import statistics
import sys
from pathlib import Path

import psutil


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "deploy" / "local"))

from mesh import park_group_at_end as _park  # noqa: E402

from tests.support.databases import drop_database as _drop, fresh_database as _fresh  # noqa: E402

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
PGPORT = int(os.environ.get("PGPORT", "55432"))
ADMIN_DSN = f"postgresql://mesh@127.0.0.1:{PGPORT}/postgres"

ADDRESSES = [
    "45 Lê Văn Sỹ, Phường 13, Quận Phú Nhuận, TP.HCM", "88 Phan Văn Trị, Phường 10, Gò Vấp",
    "P. Thảo Điền, Q.2, Hồ Chí Minh", "12 Lý Tự Trọng, P. Bến Nghé, Q.1, TPHCM",
    "234 Nguyễn Trãi, Phường 3, Quận 5, TP HCM", "15 Đường số 7, P. Bình Trị Đông B, Q. Bình Tân",
    "Ấp 3, Xã Tân Thạnh Đông, Huyện Củ Chi", "102 Lê Văn Việt, P. Hiệp Phú, TP Thủ Đức",
    "Phuong 14 Quan Go Vap HCM", "Phường 1",
]
CATEGORIES = ["essential_supplies", "covid_support", "vulnerable_person", "lighting", "water", "other"]


def web_request(i: int, rng: random.Random) -> dict:
    return {"full_name": "Nguyễn Văn Bình", "phone": f"09{rng.choice('0134678')}{rng.randrange(10**7):07d}",
            "address": rng.choice(ADDRESSES), "category": rng.choice(CATEGORIES),
            "description": f"Yêu cầu hỗ trợ số {i}: gia đình đang gặp khó khăn.", "is_public": i % 2 == 0}


async def fresh_database(prefix: str) -> str:
    return await _fresh(ADMIN_DSN, prefix)


async def drop_database(name: str) -> None:
    await _drop(ADMIN_DSN, name)


async def park_group_at_end(group_id: str, *topics: str) -> None:
    await _park(KAFKA, group_id, *topics)


def cpu_seconds(process: int | psutil.Process) -> float:
    """User and system CPU a process has used so far (0 once it is gone): the difference of two
    readings is what it spent between them, however busy the rest of the machine was."""
    try:
        times = (process if isinstance(process, psutil.Process) else psutil.Process(process)).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"p50": at(0.50), "p99": at(0.99), "p99.9": at(0.999), "max": ordered[-1],
            "mean": statistics.fmean(ordered)}


