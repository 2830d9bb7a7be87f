"""The root of every error cityops raises on purpose.

Each package has its own ``exceptions`` module whose classes derive from :class:`CityOpsError`,
so a caller can catch everything cityops means to raise with one ``except`` clause and let
programming errors through.
"""

__all__ = ["CityOpsError"]


class CityOpsError(Exception):
    """Base class of all cityops errors; its message is meant for the person running cityops."""
