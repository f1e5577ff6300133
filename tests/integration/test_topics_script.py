"""`deploy/topics.py` started beside a cluster that is not ready (compose starts everything at once,
Kubernetes each pod): it waits for enough brokers to make a topic, and gives up saying why, instead
of failing at its first try or asking one broker for topics with three replicas; with every topic
made already, one broker's answer is enough."""

import asyncio
import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "topics.py"
pytestmark = pytest.mark.kafka


def topics(bootstrap: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, **env})


def test_to_make_a_topic_it_waits_for_as_many_brokers_as_the_replication_asked_and_then_gives_up(
        kafka_bootstrap, capsys):
    spec = importlib.util.spec_from_file_location("deploy_topics", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(SystemExit) as gave_up:
        asyncio.run(script.cluster(kafka_bootstrap, 3, 5.0))
    # Asked more than once, while it waited, and then the reason it stopped.
    assert capsys.readouterr().err.count("1 broker(s) up, 3 needed") >= 2
    assert "gave up after 5 s" in str(gave_up.value)


def test_with_every_topic_made_it_needs_no_more_brokers_than_answer(kafka_bootstrap):
    """Each Kubernetes pod runs it before it starts: waiting for three brokers when there was
    nothing to make, no pod started while one broker was down."""
    made = topics(kafka_bootstrap, MESH_TOPIC_REPLICATION="3", MESH_TOPIC_WAIT_SECONDS="5")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().startswith("topics: 0 created") and "needed" not in made.stderr


def test_against_the_suites_broker_it_finds_every_topic_there(kafka_bootstrap):
    made = topics(kafka_bootstrap)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().startswith("topics: 0 created")


def test_with_no_broker_it_keeps_asking_until_its_time_is_up():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{unused.getsockname()[1]}"
    made = topics(closed, MESH_TOPIC_WAIT_SECONDS="5")
    assert made.returncode == 1
    assert made.stderr.count(f"no answer from {closed}") >= 2


async def test_dead_letters_are_kept_until_people_have_read_them(kafka_bootstrap):
    """A dead letter waits for a person: an unroutable request answered 202 was deleted after
    Kafka's default 7 days. The requests themselves outlast a long stop of every router."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from contracts import topics as names

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        wanted = [*map(names.dlq, names.ALL), names.INTAKE_REQUESTS, names.UNIT_RESPONSES]
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in wanted])
    finally:
        await admin.close()
    retention = {resource[3]: {entry[0]: entry[1] for entry in resource[4]}["retention.ms"]
                 for answer in answers for resource in answer.resources}
    assert retention == {**{names.dlq(t): "-1" for t in names.ALL},
                         names.INTAKE_REQUESTS: "2592000000", names.UNIT_RESPONSES: "2592000000"}


async def test_a_topic_made_before_and_kept_too_short_is_named(kafka_bootstrap):
    """Existing topics are left as they are; one an older script made with Kafka's 7 days is named,
    with the setting to give it, so its dead letters are not deleted unseen; and one Kafka made by
    itself, with one partition, is named too: one instance of a service alone could read it."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from contracts import topics as names

    topic = names.dlq(names.UNIT_RESPONSES)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
        for _ in range(50):  # the deletion is asynchronous
            try:
                await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "604800000"})])
                break
            except Exception:  # noqa: BLE001 - TopicAlreadyExists while the deletion completes
                await asyncio.sleep(0.2)
        made = topics(kafka_bootstrap)
        assert made.returncode == 0, made.stderr
        assert f"{topic} is kept 604800000 ms" in made.stderr and "retention.ms=-1" in made.stderr
        assert f"{topic} has 1 partition(s), fewer than the {names.PARTITIONS} asked" in made.stderr
        assert "has 1 partition" not in made.stderr.replace(f"{topic} has 1", ""), "only that topic is named"
    finally:  # made again as the mesh needs it, for the rest of the suite
        await admin.delete_topics([topic])
        for _ in range(100):
            if topic not in await admin.list_topics():
                break
            await asyncio.sleep(0.1)
        again = topics(kafka_bootstrap)
        await admin.close()
    assert again.returncode == 0 and again.stdout.startswith("topics: 1 created"), again.stdout + again.stderr
