"""Progress of long jobs: bars on a terminal, plain lines in a log file, nothing when quiet.

Every long loop (training batches, pool scoring, evaluation, prediction) takes a ``Progress``
(or ``True`` / ``False``, see ``Progress.of``) and wraps its iterable in ``progress.bar(...)``.
On a terminal that is a tqdm bar with the rate and the time left; when the output is not a
terminal (a log, CI) it is a plain line every ``interval`` seconds and one at the end, so a log
stays readable (no carriage-return updates).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """Where progress goes: ``enabled=False`` is quiet; ``stream`` defaults to standard error."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None, interval: float = 10.0, detail: bool = True) -> None:
        self.enabled = enabled
        self.stream = stream
        self.interval = interval
        self.detail = detail  # inner loops (a training epoch's batches) and per-epoch lines too

    def brief(self) -> Progress:
        """The same output without the inner detail: a job inside a larger one (a round's training)."""
        return Progress(self.enabled, self.stream, self.interval, detail=False)

    @classmethod
    def of(cls, value: bool | Progress | None) -> Progress:
        """``True`` -> progress on standard error, ``False``/``None`` -> quiet, a ``Progress`` as is."""
        return value if isinstance(value, Progress) else cls(enabled=bool(value))

    @property
    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    @property
    def interactive(self) -> bool:
        """Whether progress shows as bars: enabled and writing to a terminal."""
        return self.enabled and self._out.isatty()

    def line(self, text: str, detail: bool = False) -> None:
        """One line of news (a finished round; with ``detail``, an epoch's scores)."""
        if not self.enabled or (detail and not self.detail):
            return
        if self.interactive:
            from tqdm import tqdm

            tqdm.write(text, file=self._out)
        else:
            print(text, file=self._out, flush=True)

    def bar(self, items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
            detail: bool = False) -> Iterator[T]:
        """``items``, reporting how far the loop got (count, rate, time left); a ``detail`` bar
        (an inner loop) only when this progress shows detail."""
        if total is None:
            total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        if not self.enabled or (detail and not self.detail):
            yield from items
        elif self.interactive:
            from tqdm import tqdm  # not tqdm.auto: its asyncio bar calls iter() on the items at once, and a second
            # iterator of a DataLoader draws from torch's RNG, so training would differ on a terminal

            yield from tqdm(items, total=total, desc=desc, unit=unit, leave=False, file=self._out, dynamic_ncols=True)
        else:
            yield from self._plain(items, total, desc, unit)

    def _plain(self, items: Iterable[T], total: int | None, desc: str, unit: str) -> Iterator[T]:
        started = last = time.perf_counter()
        for done, item in enumerate(items, start=1):
            yield item
            now = time.perf_counter()
            if now - last >= self.interval or done == total:
                last = now
                self.line(self._status(desc, done, total, unit, now - started))

    @staticmethod
    def _status(desc: str, done: int, total: int | None, unit: str, seconds: float) -> str:
        """``"scoring pool: 40/100 images, 3.2 images/s, 19 s left"``.

        >>> Progress._status("scoring pool", 40, 100, "images", 12.5)
        'scoring pool: 40/100 images, 3.2 images/s, 19 s left'
        """
        rate = done / seconds if seconds > 0 else float("inf")
        text = f"{desc}: {done}/{total} {unit}" if total else f"{desc}: {done} {unit}"
        text += f", {rate:.1f} {unit}/s"
        if total and done < total and rate > 0:
            text += f", {(total - done) / rate:.0f} s left"
        return text
