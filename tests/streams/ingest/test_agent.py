"""The agent's own logic: how a format header is read."""

from __future__ import annotations

import pytest

from streams.ingest.agent import _header


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
