"""A list of defect records kept on disk: the defects of a huge raster need not fit in memory."""

from __future__ import annotations

import pickle
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison


class DefectList(Sequence[dict]):
    """Defect records (dicts) in a temporary file, pickled one after another (about four times
    faster to write and read back than JSON lines: a survey's crack networks are millions of
    coordinates), with only their offsets in memory. Appending writes a record out; reading
    (indexing, iterating, ``sort``) reads it back, so a pass over 20,000 defects holds one at a
    time. Records read back are new dicts: changing one does not change the list. The file goes
    with the object."""

    def __init__(self, records: Iterable[dict] = ()) -> None:
        self._file = tempfile.TemporaryFile(prefix="crackal-defects-", suffix=".pickle")  # noqa: SIM115 (lives with the list)
        weakref.finalize(self, self._file.close)
        self._offsets: list[int] = []
        self.extend(records)

    def append(self, record: dict) -> None:
        """Write ``record`` at the end."""
        self._file.seek(0, 2)
        self._offsets.append(self._file.tell())
        pickle.dump(record, self._file, protocol=pickle.HIGHEST_PROTOCOL)

    def extend(self, records: Iterable[dict]) -> None:
        """Write each of ``records`` at the end."""
        for record in records:
            self.append(record)

    def _read(self, offset: int) -> dict:
        self._file.seek(offset)
        return pickle.load(self._file)  # noqa: S301 (our own temporary file)

    def __len__(self) -> int:
        return len(self._offsets)

    @overload
    def __getitem__(self, index: int) -> dict: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict]: ...

    def __getitem__(self, index: int | slice) -> dict | list[dict]:
        if isinstance(index, slice):
            return [self._read(offset) for offset in self._offsets[index]]
        return self._read(self._offsets[index])

    def __iter__(self) -> Iterator[dict]:
        for offset in list(self._offsets):
            yield self._read(offset)

    def sort(self, key: Callable[[dict], SupportsRichComparison]) -> None:
        """Reorder like ``list.sort`` (stable); the records stay where they are in the file."""
        keys = [key(record) for record in self]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._offsets = [self._offsets[i] for i in order]
