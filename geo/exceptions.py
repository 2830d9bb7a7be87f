"""Errors of the geography package.

Every error derives from :class:`GeographyError`, itself a
:class:`~schemas.exceptions.CityOpsError`, so a caller can catch all geography failures with one
clause.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.exceptions import CityOpsError

__all__ = ["GeographyError", "InvalidGeographyError", "Problem", "UnknownCodeError"]

# An error message lists at most this many problems; the exception keeps all of them, so a tool
# can print the rest, but a person reading a log wants the first few, not a wall of 5,000 lines.
_MAX_LISTED = 10


class GeographyError(CityOpsError):
    """Base class of the errors raised by :mod:`geo`."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one feature of a geography file.

    Attributes
    ----------
    feature : str
        The feature the problem is about: its code when it has a usable one, else
        ``"feature #N"`` (N counts from 0 in the file's ``features`` array).
    message : str
        What is wrong, in words a data steward can act on.
    """

    feature: str
    message: str

    def __str__(self) -> str:
        return f"{self.feature}: {self.message}"


class InvalidGeographyError(GeographyError):
    """A geography file breaks the format or the rules of a hierarchy.

    Parameters
    ----------
    source : str
        Where the geography came from (a path or ``"<bytes>"``).
    problems : sequence of Problem
        Everything found wrong, in file order within each check; never empty.

    Examples
    --------
    >>> err = InvalidGeographyError("city.geojson", [Problem("441602", "duplicate code")])
    >>> print(err)
    city.geojson: 1 problem
      441602: duplicate code
    >>> err.problems[0].feature
    '441602'
    """

    def __init__(self, source: str, problems: list[Problem] | tuple[Problem, ...]) -> None:
        if not problems:
            raise ValueError("an InvalidGeographyError needs at least one problem")
        self.source = source
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = [f"{source}: {count} problem{'s' if count > 1 else ''}"]
        lines += [f"  {problem}" for problem in self.problems[:_MAX_LISTED]]
        if count > _MAX_LISTED:
            lines.append(f"  ... and {count - _MAX_LISTED} more")
        super().__init__("\n".join(lines))


class UnknownCodeError(GeographyError, KeyError):
    """A code that is not in the loaded hierarchy was looked up.

    It is also a :class:`KeyError`, as a missing key of a mapping would be.
    """

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(f"no unit with code {code!r} in the hierarchy")

    def __str__(self) -> str:
        # KeyError's own __str__ would print the repr of the message with extra quotes.
        return str(self.args[0])
