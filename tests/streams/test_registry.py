"""The device registry: registrations, removals, and records it must not believe."""

from __future__ import annotations

import pytest

from schemas import DeadLetterReason
from streams.exceptions import Rejected
from streams.registry import DeviceRegistry, parse_registration
from tests.streams.ingest.samples import device

CAMERA = device("cam-1", kind=None)


def test_records_register_replace_and_remove() -> None:
    registry = DeviceRegistry.from_devices([])
    registry.apply(b"cam-1", CAMERA.model_dump_json().encode())
    moved = CAMERA.model_copy(update={"active": False})
    registry.apply(b"cam-1", moved.model_dump_json().encode())
    assert registry["cam-1"].active is False
    registry.apply(b"cam-1", None)
    assert "cam-1" not in registry
    assert registry.skipped == 0


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        (b"cam-1", b"{not json", "record"),  # not JSON at all
        (b"cam-1", b'{"device_id": "cam-1"}', "device_type"),  # missing fields
        (b"cam-2", CAMERA.model_dump_json().encode(), "is not the device id"),  # wrong key
    ],
)
def test_an_invalid_record_is_rejected_and_the_last_valid_one_kept(
    key: bytes, value: bytes, said: str
) -> None:
    with pytest.raises(Rejected) as caught:
        parse_registration(key, value)
    assert caught.value.reason is DeadLetterReason.INVALID_DEVICE
    assert said in caught.value.message

    registry = DeviceRegistry.from_devices([CAMERA])
    registry.apply(key, value)
    assert registry["cam-1"] == CAMERA
    assert registry.skipped == 1
