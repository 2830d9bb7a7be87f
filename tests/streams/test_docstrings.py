"""The examples in the docstrings of streams run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize(
    "module",
    [
        "streams.settings",
        "streams.metrics",
        "streams.registry",
        "streams.ingest.dedup",
        "streams.ingest.decode",
    ],
)
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
