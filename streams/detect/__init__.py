"""Detection: located events to incidents, by rules kept as data, on event time.

:mod:`~streams.detect.rules` reads and validates the rules file, :mod:`~streams.detect.detector`
applies it to events without a broker, :mod:`~streams.detect.agent` runs it as a Faust agent with
its state in a changelog-backed table. See ``docs/detection.md``.
"""
