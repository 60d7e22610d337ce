"""Other tools' label formats: Label Studio results (brush RLE, polygons, rectangles) and COCO."""

from __future__ import annotations

import json
from pathlib import Path

from crackal.errors import CrackalError


def read_json(path: str | Path, kind: str, hint: str) -> object:
    """A JSON file's content, or one ``CrackalError`` naming ``kind`` (e.g. "a COCO instances file")
    and what to do (``hint``) when the file is missing or not JSON."""
    path = Path(path)
    if not path.is_file():
        raise CrackalError(f"{kind} not found: {path}; check the path")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CrackalError(f"{path} is not {kind} (not JSON: {exc}); {hint}") from None
