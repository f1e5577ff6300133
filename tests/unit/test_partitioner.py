"""A case's records land on the partition Kafka's own clients would choose for its key."""

import uuid

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from contracts.messaging import partition_for


@given(key=st.binary(max_size=64), partitions=st.integers(min_value=1, max_value=96))
def test_a_key_goes_where_the_default_partitioner_sends_it(key, partitions):
    all_partitions = list(range(partitions))
    assert partition_for(key, all_partitions, all_partitions) == DefaultPartitioner()(key, all_partitions, all_partitions)


def test_the_same_key_keeps_its_partition_whatever_the_topic_size():
    key = str(uuid.uuid4()).encode()
    for partitions in (6, 12, 6, 48, 12):  # the hash is cached per key; the partition count is not
        all_partitions = list(range(partitions))
        assert partition_for(key, all_partitions, all_partitions) == DefaultPartitioner()(key, all_partitions, [])


def test_a_record_without_a_key_goes_to_an_available_partition():
    assert partition_for(None, [0, 1, 2, 3], [2]) == 2
