"""Where produced records go."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.produce import partition_for


@pytest.mark.parametrize("key", [b"441602", b"441622", b"wl-001", b"x" * 40])
def test_records_go_where_kafkas_default_partitioner_puts_them(key: bytes) -> None:
    # Java's and aiokafka's default partitioner agree (murmur2); consumers of events.located
    # rely on a county's events sharing a partition whoever wrote them.
    partitions = list(range(8))
    assert partition_for(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_record_without_key_goes_to_some_partition() -> None:
    assert partition_for(None, [0, 1, 2]) in {0, 1, 2}
