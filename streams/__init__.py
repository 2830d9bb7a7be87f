"""The cityops stream side: settings, the Faust app and its agents, the local broker, the CLI."""

from streams.settings import Settings, TopicNames

__all__ = ["Settings", "TopicNames"]
