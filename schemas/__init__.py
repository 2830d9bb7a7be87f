"""Contracts of cityops: the pydantic models of everything on its topics, and the root error."""

from schemas.exceptions import CityOpsError

__all__ = ["CityOpsError"]
