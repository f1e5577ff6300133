"""A service's background loops stop when told to: waiting for a wake-up never swallows the stop."""

import asyncio
import os
import signal
import threading

import pytest

from contracts.runtime import report_tasks_on_signal, wait_a_while


async def loop_until_stopped(wake: asyncio.Event, rounds: list[int]) -> None:
    while True:  # a relay's shape: a round, then wait to be woken
        rounds.append(1)
        await wait_a_while(wake, 5)
        wake.clear()


async def test_a_stop_that_arrives_with_a_wake_up_still_stops_the_loop():
    wake, rounds = asyncio.Event(), []
    task = asyncio.create_task(loop_until_stopped(wake, rounds))
    await asyncio.sleep(0.01)
    wake.set()  # new work and the stop in the same instant
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)


async def test_the_wait_ends_when_woken_or_when_its_time_is_up():
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await wait_a_while(wake, 0.05)
    assert loop.time() - started >= 0.05
    loop.call_soon(wake.set)
    await asyncio.wait_for(wait_a_while(wake, 60), 1)


async def test_sigusr2_writes_where_each_task_waits(capsys):
    parked = asyncio.create_task(asyncio.Event().wait(), name="parked-relay")
    report_tasks_on_signal()
    try:
        os.kill(os.getpid(), signal.SIGUSR2)
        await asyncio.sleep(0.05)
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR2)
        parked.cancel()
    assert "--- task parked-relay" in capsys.readouterr().err


def test_a_service_started_off_the_main_thread_still_starts():
    failures = []

    async def lifespan() -> None:
        report_tasks_on_signal()

    def serve() -> None:  # how the integration tests run a service: uvicorn on a thread
        try:
            asyncio.run(lifespan())
        except Exception as error:
            failures.append(error)

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join()
    assert failures == []
