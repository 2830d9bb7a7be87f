"""The first agent: relay raw sensor readings to the located-events topic, unchanged.

It proves the stack end to end (broker, topics, worker, producer) until the ingest pipeline
replaces it with validation, location and dead letters.
"""

from __future__ import annotations

import faust

from streams.settings import Settings

__all__ = ["register_relay"]


def register_relay(app: faust.App, settings: Settings) -> None:
    """Register the ``relay_readings`` agent on ``app``."""
    source = app.topic(settings.topic("sensor_readings"))
    target = app.topic(settings.topic("events_located"))

    # Stateless, but kept at concurrency 1 like every cityops agent: with concurrency > 1
    # Faust can commit past an in-flight message (faust-streaming issue 606).
    @app.agent(source, name="relay_readings", concurrency=1)
    async def relay_readings(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await target.send(key=event.key, value=event.value)
