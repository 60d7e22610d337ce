"""The one exception type for mistakes a user can fix, and the checks that raise it."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar, overload

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class CrackalError(Exception):
    """A problem with the user's input (path, file, option).

    The message says what is wrong and what to do; the CLI prints it on one line
    and exits non-zero without a traceback.
    """


class OptionError(CrackalError):
    """A bad option value. The message names the option as Python does (``crop_size``);
    the command line shows it as its flag (``--crop-size``), see ``for_cli``.

    >>> str(OptionError("crop_size", "must be a multiple of 32, got 33"))
    'crop_size must be a multiple of 32, got 33'
    """

    def __init__(self, option: str, problem: str) -> None:
        self.option, self.problem = option, problem
        super().__init__(f"{option} {problem}")

    def for_cli(self, flags: Mapping[str, str] | None = None) -> str:
        """The message with the option written as a flag (``flags`` maps names that differ)."""
        flag = (flags or {}).get(self.option) or "--" + self.option.replace("_", "-")
        return f"{flag} {self.problem}"


@overload
def choose(table: Mapping[K, T], name: K, option: str) -> T: ...


@overload
def choose(table: Iterable[K], name: K, option: str) -> K: ...


def choose(table: Mapping[K, T] | Iterable[K], name: K, option: str) -> Any:
    """The entry of ``table`` called ``name``, or an ``OptionError`` listing the choices.

    ``table`` maps names to what they select (callables, classes); a plain list of names
    only validates (the name itself is returned).

    >>> choose({"mean": 1, "max": 2}, "max", "reduction")
    2
    >>> choose(("top", "stochastic"), "best", "selection")
    Traceback (most recent call last):
    ...
    crackal.errors.OptionError: selection must be one of top, stochastic; got 'best'
    """
    names = table if isinstance(table, Mapping) else {n: n for n in table}
    if name not in names:
        raise OptionError(option, f"must be one of {', '.join(map(str, names))}; got {name!r}")
    return names[name]


def check_options(checks: Iterable[tuple[bool, str, str]]) -> None:
    """Raise an ``OptionError`` for the first ``(ok, option, problem)`` that is not ok."""
    for ok, option, problem in checks:
        if not ok:
            raise OptionError(option, problem)
