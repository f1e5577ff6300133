"""A steady stream of citizens' requests, as a well-behaved channel sends them: at a fixed rate,
each retried with the same Idempotency-Key after a 503 (Retry-After) or a broken connection, until
the mesh answers 202. Runs in its own thread while a test breaks things."""

import asyncio
import itertools
import random
import threading
import time
import uuid

import aiohttp

ADDRESSES = ["45 Lê Văn Sỹ, Phường 13, Quận Phú Nhuận, TP.HCM", "88 Phan Văn Trị, Phường 10, Gò Vấp",
             "P. Thảo Điền, Q.2, Hồ Chí Minh", "12 Lý Tự Trọng, P. Bến Nghé, Q.1, TPHCM",
             "102 Lê Văn Việt, P. Hiệp Phú, TP Thủ Đức", "234 Nguyễn Trãi, Phường 3, Quận 5, TP HCM"]
CATEGORIES = ["essential_supplies", "covid_support", "vulnerable_person", "lighting", "water", "other"]
# A new citizen for every request, never the same phone twice in a process: the same phone, area
# and category as an open case is a duplicate, which is linked to that case instead of routed.
PHONES = itertools.count(random.randrange(10**6))


class Stream:
    def __init__(self, intake_url: str, count: int, rate: float, give_up_after: float = 240):
        self.url = intake_url + "/v1/channels/web/requests"
        self.count, self.rate, self.give_up_after = count, rate, give_up_after
        self.receipts: dict[str, dict] = {}  # Idempotency-Key → the 202 answer
        self.retries = 0
        self.failed: list[str] = []
        self.rng = random.Random(uuid.uuid4().int)
        # Held, the stream goes on past ``count`` until released, at a fifth of the rate: a fault
        # that takes longer than ``count`` requests (five restarts of a service that takes seconds
        # to start) still meets a flowing load, without a backlog that takes minutes to work off.
        self.held = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self, hold: bool = False) -> "Stream":
        if hold:
            self.held.set()
        self.thread.start()
        return self

    def release(self) -> None:
        self.held.clear()

    def join(self) -> "Stream":
        self.thread.join()
        return self

    @property
    def done(self) -> int:
        return len(self.receipts)

    async def _run(self) -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=500),
                                         timeout=aiohttp.ClientTimeout(total=20)) as session:
            started = time.monotonic()
            tasks = []
            while len(tasks) < self.count or self.held.is_set():
                n = len(tasks)
                due = n / self.rate if n < self.count else self.count / self.rate + (n - self.count) * 5 / self.rate
                delay = started + due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self._one(session, n)))
            self.count = len(tasks)
            await asyncio.gather(*tasks)

    async def _one(self, session: aiohttp.ClientSession, i: int) -> None:
        key = str(uuid.uuid4())
        body = {"full_name": "Trần Thị Thu", "phone": f"093{next(PHONES) % 10**7:07d}",
                "address": self.rng.choice(ADDRESSES), "category": self.rng.choice(CATEGORIES),
                "description": f"Yêu cầu {i}: cần hỗ trợ.", "is_public": i % 2 == 0}
        deadline = time.monotonic() + self.give_up_after
        while time.monotonic() < deadline:
            try:
                async with session.post(self.url, json=body, headers={"Idempotency-Key": key}) as answer:
                    if answer.status == 202:
                        self.receipts[key] = await answer.json()
                        return
                    wait = float(answer.headers.get("Retry-After", "1"))
            except (aiohttp.ClientError, asyncio.TimeoutError):
                wait = 1.0
            self.retries += 1
            await asyncio.sleep(min(wait, 2.0))
        self.failed.append(key)
