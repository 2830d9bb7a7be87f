"""The agent's own logic: where records go, and how a format header is read."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.ingest.agent import _header, _partition


@pytest.mark.parametrize("key", [b"441602", b"441622", b"wl-001", b"x" * 40])
def test_records_go_where_kafkas_default_partitioner_puts_them(key: bytes) -> None:
    # Java's and aiokafka's default partitioner agree (murmur2); consumers of events.located
    # rely on a county's events sharing a partition whoever wrote them.
    partitions = list(range(8))
    assert _partition(key, partitions) == DefaultPartitioner()(key, partitions, partitions)


def test_a_record_without_key_goes_to_some_partition() -> None:
    assert _partition(None, [0, 1, 2]) in {0, 1, 2}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("format", b"frigate")], b"frigate"),  # as aiokafka delivers them
        ({"format": b"deepstream"}, b"deepstream"),  # as a mapping
        ([("trace", b"x")], None),  # other headers are ignored
    ],
)
def test_the_format_header_is_found(
    headers: list[tuple[str, bytes]] | dict[str, bytes], expected: bytes | None
) -> None:
    assert _header(headers) == expected
