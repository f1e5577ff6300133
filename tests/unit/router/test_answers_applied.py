"""How far the units' answers are applied, as the deadline timers read it, over a stand-in for
Kafka's answers (the real Kafka: tests/integration/router/test_timers_wait_for_answers.py)."""

from types import SimpleNamespace

from aiokafka import TopicPartition

from contracts import topics
from services.router.timers import AnswersApplied

P0 = TopicPartition(topics.UNIT_RESPONSES, 0)


class Topic:
    """unit.responses' one partition and the group's committed offset, as the test sets them."""

    def __init__(self, first: int, end: int, committed: int | None):
        self.first, self.end, self.committed = first, end, committed

    async def describe_topics(self, _names):
        return [{"partitions": [{"partition": 0}]}]

    async def beginning_offsets(self, _partitions):
        return {P0: self.first}

    async def end_offsets(self, _partitions):
        return {P0: self.end}

    async def list_consumer_group_offsets(self, _group, partitions):
        return {} if self.committed is None else {P0: SimpleNamespace(offset=self.committed)}


async def reading(topic: Topic) -> AnswersApplied:
    answers = AnswersApplied("127.0.0.1:1", "router-responses")
    await answers.close()  # not started: its own clients are not used
    answers.admin = answers.offsets = topic
    answers.started = True
    return answers


async def test_the_moment_moves_once_the_group_has_applied_what_was_on_the_topic():
    topic = Topic(first=0, end=5_000, committed=4_000)
    answers = await reading(topic)
    assert await answers.applied_until() is None, "a thousand answers not applied yet"
    topic.committed = 5_000
    assert await answers.applied_until() is not None


async def test_a_topic_made_again_does_not_hold_every_deadline_back_for_good():
    """The moment aimed at ends the topic had before it was deleted and made again, which the
    group, its offsets gone, never reached: no deadline was escalated until every router restarted."""
    topic = Topic(first=0, end=5_000, committed=4_000)
    answers = await reading(topic)
    assert await answers.applied_until() is None
    topic.first, topic.end, topic.committed = 0, 3, None  # made again: three answers, none applied
    assert await answers.applied_until() is None
    topic.committed = 3
    assert await answers.applied_until() is not None


async def test_a_group_that_never_committed_starts_where_the_topic_begins():
    topic = Topic(first=120, end=120, committed=None)  # retention took everything there was
    answers = await reading(topic)
    assert await answers.applied_until() is not None
