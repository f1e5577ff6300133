"""Creates the mesh's Kafka topics if they are missing: ``python deploy/topics.py``.

Partitions, replication and min.insync.replicas come from the environment, so the same script
sets up the local single broker (1, 1) and a real cluster (3, 2). ``case.events`` and
``notify.deliveries`` are kept forever: oversight rebuilds its read models from them; so are
the audit checkpoints, and every dead-letter topic: what is there waits for a person, however
long that takes (Kafka's default of 7 days deleted a request answered 202 that no router could
route). The requests and the units' answers are kept 30 days, so that a router stopped for a
long holiday still finds every one. Topics that exist are left as they are; one kept for less
than that is named on stderr, with the setting to give it, and so is one with fewer partitions
than asked (one Kafka made by itself, on a first write, has one).
"""

import asyncio
import os
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from contracts import topics  # noqa: E402

TOPIC_ALREADY_EXISTS = 36  # Kafka's error code: another run made it meanwhile
# retention.ms of the topics that must outlast Kafka's default 7 days (-1: forever).
RETENTION = {**dict.fromkeys([topics.CASE_EVENTS, topics.NOTIFY_DELIVERIES, topics.AUDIT_CHECKPOINTS,
                              *map(topics.dlq, topics.ALL)], -1),
             **dict.fromkeys([topics.INTAKE_REQUESTS, topics.UNIT_RESPONSES], 30 * 24 * 3600 * 1000)}


async def cluster(bootstrap: str, replication: int, wait_seconds: float) -> AIOKafkaAdminClient:
    """An admin client once the cluster answers with enough brokers for the replication asked.

    Started beside a cluster (compose starts everything at once, Kubernetes each pod), the first tries
    meet no broker, or fewer than three, and a topic asked for with replication 3 would be refused.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="mesh-topics")
        try:
            await admin.start()
            brokers = len((await admin.describe_cluster())["brokers"])
            if brokers >= replication:
                return admin
            why = f"{brokers} broker(s) up, {replication} needed for the replication asked"
        except KafkaError as error:
            why = f"no answer from {bootstrap}: {error!r}"
        await admin.close()
        if time.monotonic() >= deadline:
            sys.exit(f"topics: {why}; gave up after {wait_seconds:.0f} s")
        print(f"topics: {why}; trying again", file=sys.stderr)
        await asyncio.sleep(2.0)


async def retention(admin: AIOKafkaAdminClient, names: set[str]) -> dict[str, int]:
    """Each topic's retention.ms as the cluster has it."""
    if not names:
        return {}
    answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in sorted(names)])
    kept = {}
    for resource in (r for answer in answers for r in answer.resources):
        # (error code, message, type, name, entries): a topic deleted meanwhile, or one this
        # principal may not describe, has an error and no entries; it is named, not a crash.
        value = {entry[0]: entry[1] for entry in resource[4]}.get("retention.ms")
        if resource[0] != 0 or value is None:
            print(f"topics: could not read {resource[3]}'s retention (error {resource[0]})", file=sys.stderr)
            continue
        kept[resource[3]] = int(value)
    return kept


async def main() -> None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    partitions = int(os.environ.get("MESH_TOPIC_PARTITIONS", topics.PARTITIONS))
    replication = int(os.environ.get("MESH_TOPIC_REPLICATION", "1"))
    min_isr = os.environ.get("MESH_TOPIC_MIN_ISR", "1")
    wait = float(os.environ.get("MESH_TOPIC_WAIT_SECONDS", "120"))
    # Every topic there already, one broker's answer will do: each Kubernetes pod runs this before
    # it starts, and one that waited for as many brokers as a new topic's replicas would not start
    # while a broker is down, which min.insync.replicas=2 is there to ride out.
    admin = await cluster(bootstrap, 1, wait)
    if not set(topics.all_with_dead_letters()) <= set(await admin.list_topics()):
        await admin.close()
        admin = await cluster(bootstrap, replication, wait)
    try:
        existing = set(await admin.list_topics())
        wanted = []
        for name in topics.all_with_dead_letters():
            if name in existing:
                continue
            config = {"min.insync.replicas": min_isr}
            if name in RETENTION:
                config["retention.ms"] = str(RETENTION[name])
            wanted.append(NewTopic(name, partitions, replication, topic_configs=config))
        if wanted:
            # The broker answers each topic's outcome rather than raising: a refused one (a setting
            # the cluster cannot meet) would leave services to start without it.
            answer = await admin.create_topics(wanted)
            refused = [f"{e[0]}: error {e[1]} {e[2] if len(e) > 2 and e[2] else ''}".strip()
                       for e in answer.topic_errors if e[1] not in (0, TOPIC_ALREADY_EXISTS)]
            if refused:
                sys.exit("topics: not created: " + "; ".join(refused))
            missing = set(topics.all_with_dead_letters())
            for _ in range(50):
                missing -= set(await admin.list_topics())
                if not missing:
                    break
                await asyncio.sleep(0.2)
            if missing:
                sys.exit("topics: created, yet not listed by the cluster: " + ", ".join(sorted(missing)))
        print(f"topics: {len(wanted)} created, {len(existing & set(topics.all_with_dead_letters()))} already there")
        for name, kept_ms in sorted((await retention(admin, existing & set(RETENTION))).items()):
            if kept_ms != -1 and (RETENTION[name] == -1 or kept_ms < RETENTION[name]):
                print(f"topics: {name} is kept {kept_ms} ms, less than this mesh needs:"
                      f" give it retention.ms={RETENTION[name]}", file=sys.stderr)
        await name_too_few_partitions(admin, existing & set(topics.all_with_dead_letters()), partitions)
    finally:
        await admin.close()


async def name_too_few_partitions(admin: AIOKafkaAdminClient, names: set[str], asked: int) -> None:
    """Name each topic with fewer partitions than asked: only that many instances of a service share
    its reading, the rest stand idle. Adding partitions sends a key's later records to another
    partition than its earlier ones, so it is done with the mesh stopped and every group caught up."""
    if not names:
        return
    for topic in await admin.describe_topics(sorted(names)):
        have = len(topic["partitions"])
        if topic["error_code"] == 0 and have < asked:
            print(f"topics: {topic['topic']} has {have} partition(s), fewer than the {asked} asked: at most"
                  f" {have} instance(s) of a service read it; add them with the mesh stopped and its consumers"
                  " caught up (a key's later records go to another partition)", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
