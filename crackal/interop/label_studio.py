"""Label Studio's result formats, numpy only: brush masks (RLE), polygons and rectangles.

A ``brushlabels`` result with ``format: "rle"`` holds the mask as an RGBA image (H*W*4 bytes, row
by row; the alpha channel is the mask) packed with the rle-pack scheme: a 32-bit value count, the
word size - 1 in 5 bits, four run-length field sizes - 1 in 4 bits each, then records of a repeat
bit, a 2-bit index into the field sizes, the run length - 1 in that many bits and the value(s) in
word-size bits (one value for a repeat, length values otherwise); zero bits pad the last byte.
Polygon points and rectangles are in percent of the image's width and height, from its top-left
corner, and a rectangle turns by ``rotation`` degrees clockwise about that corner.
"""

from __future__ import annotations

import uuid

import numpy as np
from skimage.draw import polygon as draw_polygon

from crackal.errors import CrackalError

RUN_BITS = (3, 4, 8, 16)  # the run-length field sizes Label Studio writes
WORD_BITS = 8
MAX_RUN = 1 << RUN_BITS[-1]


def encode_rle(values: np.ndarray) -> list[int]:
    """Pack a flat uint8 array with rle-pack (the scheme Label Studio's brush results use).

    >>> encode_rle(np.full(4, 255, np.uint8))
    [0, 0, 0, 4, 57, 27, 252, 127, 224]
    """
    values = np.asarray(values).ravel()
    if values.size and (values.min() < 0 or values.max() > 255):
        raise CrackalError("brush RLE holds bytes 0-255; got values outside that range")
    return _encode_runs(*_runs(values.astype(np.uint8)))


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lengths and values of the runs of equal values in a flat array."""
    ends = np.append(np.flatnonzero(values[1:] != values[:-1]), values.size - 1) if values.size else np.zeros(0, np.int64)
    return np.diff(ends, prepend=-1), values[ends].astype(np.int64)


def _encode_runs(run_lengths: np.ndarray, run_values: np.ndarray) -> list[int]:
    count = int(run_lengths.sum())
    fields = [(count, 32), (WORD_BITS - 1, 5)] + [(bits - 1, 4) for bits in RUN_BITS]
    codes, widths = np.array([v for v, _ in fields], np.int64), np.array([b for _, b in fields], np.int64)
    if count:
        chunks = -(-run_lengths // MAX_RUN)  # runs longer than the longest field split into full chunks
        run_values = np.repeat(run_values, chunks)
        lengths = np.full(chunks.sum(), MAX_RUN, np.int64)
        lengths[np.cumsum(chunks) - 1] = run_lengths - (chunks - 1) * MAX_RUN
        split = np.repeat(chunks > 1, chunks)
        size_index = np.where(split, len(RUN_BITS) - 1, np.searchsorted(np.array([1 << b for b in RUN_BITS]), lengths))
        length_bits = np.array(RUN_BITS)[size_index]
        # a lone value is a one-value literal record, the pieces of a split run repeats in the longest field (as the SDK writes them)
        repeat = ((lengths > 1) | split).astype(np.int64)
        records = (((repeat << 2 | size_index) << length_bits | (lengths - 1)) << WORD_BITS) | run_values
        codes, widths = np.concatenate([codes, records]), np.concatenate([widths, 3 + length_bits + WORD_BITS])
    bits = _bits(codes, widths)
    return np.packbits(np.append(bits, np.zeros(8 - bits.size % 8, np.uint8))).tolist()


def _bits(codes: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """The big-endian bits of each code in its width, all in a row."""
    record = np.repeat(np.arange(codes.size), widths)
    offset = np.arange(widths.sum()) - np.repeat(np.cumsum(widths) - widths, widths)
    return ((codes[record] >> (widths[record] - 1 - offset)) & 1).astype(np.uint8)


def decode_rle(rle: list[int] | bytes) -> np.ndarray:
    """Unpack rle-pack data into a flat uint8 array (the inverse of ``encode_rle``).

    >>> decode_rle([0, 0, 0, 4, 57, 27, 252, 127, 224]).tolist()
    [255, 255, 255, 255]
    """
    try:
        data = bytes(rle) + bytes(8)
    except (TypeError, ValueError):
        raise CrackalError("a brush RLE is a list of byte values (0-255)") from None
    total_bits = (len(data) - 8) * 8

    def read(position: int, count: int) -> int:
        window = int.from_bytes(data[position >> 3:(position >> 3) + 5], "big")
        return (window >> (40 - (position & 7) - count)) & ((1 << count) - 1)

    if total_bits < 53:
        raise CrackalError("brush RLE too short to hold its header; the result is truncated")
    count, word = read(0, 32), read(32, 5) + 1
    run_bits = [read(37 + 4 * i, 4) + 1 for i in range(4)]
    position, filled, lengths, values = 53, 0, [], []
    word_mask = (1 << word) - 1
    while filled < count:
        if position + 3 > total_bits:
            raise CrackalError(f"brush RLE ends after {filled} of its {count} values; the result is truncated")
        # a 40-bit window from the record's first byte holds its first 33 bits or more: with the 3-bit head,
        # a length field of at most 16 bits and (Label Studio's) 8-bit values, a whole repeat record
        window = int.from_bytes(data[position >> 3:(position >> 3) + 5], "big") << (position & 7)
        head = (window >> 37) & 7
        size = run_bits[head & 3]
        length = ((window >> (37 - size)) & ((1 << size) - 1)) + 1
        position += 3 + size
        if head >> 2:
            lengths.append(length)
            values.append((window >> (37 - size - word)) & word_mask if size + word <= 30 else read(position, word))
            position += word
        else:
            lengths += [1] * length
            values += [read(position + k * word, word) for k in range(length)]
            position += length * word
        filled += length
    if position > total_bits or filled != count:
        raise CrackalError(f"brush RLE holds {filled} values where its header says {count}; the result is corrupt")
    return np.repeat(np.array(values, np.uint8), lengths)


def mask_to_rle(mask: np.ndarray) -> list[int]:
    """A binary mask as brush RLE: RGBA bytes, 255 in every channel where the mask is set."""
    lengths, values = _runs(np.asarray(mask, bool).ravel())
    return _encode_runs(lengths * 4, values * 255)  # each pixel's run counts its four channels


def rle_to_mask(rle: list[int], height: int, width: int) -> np.ndarray:
    """A brush RLE as a boolean mask (alpha of at least 128, so anti-aliased edges count half-way)."""
    values = decode_rle(rle)
    if values.size != height * width * 4:
        raise CrackalError(f"brush RLE holds {values.size} values, but a {width}x{height} image needs "
                           f"{height * width * 4} (width x height x RGBA); was it drawn on another image?")
    return values.reshape(height, width, 4)[:, :, 3] >= 128


def _result(kind: str, value: dict, name: str, width: int, height: int, from_name: str, to_name: str) -> dict:
    return {"id": uuid.uuid4().hex[:10], "type": kind, "from_name": from_name, "to_name": to_name,
            "original_width": int(width), "original_height": int(height), "image_rotation": 0,
            "value": {**value, kind: [name]}}


def brush_result(mask: np.ndarray, name: str, from_name: str = "label", to_name: str = "image") -> dict:
    """A ``brushlabels`` result (RLE) of one class's binary mask."""
    height, width = mask.shape
    return _result("brushlabels", {"format": "rle", "rle": mask_to_rle(mask)}, name, width, height, from_name, to_name)


def rectangle_result(box, name: str, width: int, height: int, from_name: str = "label", to_name: str = "image") -> dict:
    """A ``rectanglelabels`` result of a pixel box ``(x0, y0, x1, y1)`` on a ``width`` x ``height`` image.

    >>> rectangle_result((10, 20, 30, 60), "crack", 200, 100)["value"]
    {'x': 5.0, 'y': 20.0, 'width': 10.0, 'height': 40.0, 'rotation': 0, 'rectanglelabels': ['crack']}
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    value = {"x": 100 * x0 / width, "y": 100 * y0 / height, "width": 100 * (x1 - x0) / width,
             "height": 100 * (y1 - y0) / height, "rotation": 0}
    return _result("rectanglelabels", value, name, width, height, from_name, to_name)


def box_from_rectangle(value: dict, width: int, height: int) -> tuple[float, float, float, float]:
    """The pixel box ``(x0, y0, x1, y1)`` of a rectangle result's value (of a turned rectangle, the
    box around it), clipped to the image.

    >>> box_from_rectangle({"x": 5, "y": 20, "width": 10, "height": 40}, 200, 100)
    (10.0, 20.0, 30.0, 60.0)
    """
    try:
        x, y, w, h = (float(value[k]) for k in ("x", "y", "width", "height"))
    except (KeyError, TypeError, ValueError):
        raise CrackalError(f"a rectangle needs numeric x, y, width and height; got {value}") from None
    turn = np.deg2rad(float(value.get("rotation") or 0))
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]]) * [width / 100, height / 100]
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    corners = corners @ rotation.T + [x * width / 100, y * height / 100]
    x0, y0 = np.clip(corners.min(0), 0, [width, height])
    x1, y1 = np.clip(corners.max(0), 0, [width, height])
    return round(float(x0), 6), round(float(y0), 6), round(float(x1), 6), round(float(y1), 6)


def polygon_mask(points, height: int, width: int) -> np.ndarray:
    """The pixels whose centres lie inside a polygon given in percent of the image (Label
    Studio's ``polygonlabels`` points).

    >>> polygon_mask([[0, 0], [50, 0], [50, 50], [0, 50]], 4, 4).astype(int).tolist()
    [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    """
    points = np.asarray(points, float).reshape(-1, 2)
    mask = np.zeros((height, width), bool)
    if len(points) >= 3:
        rows, cols = draw_polygon(points[:, 1] * height / 100 - 0.5, points[:, 0] * width / 100 - 0.5, shape=(height, width))
        mask[rows, cols] = True
    return mask


def mask_from_results(results: list[dict], class_names: list[str], height: int, width: int) -> np.ndarray:
    """One class mask (uint8, 0 = background) from brush and polygon results; results are painted
    in order, so a later one wins where two overlap. Other result types are ignored."""
    mask = np.zeros((height, width), np.uint8)
    for result in results:
        kind, value = result.get("type"), result.get("value") or {}
        if kind not in ("brushlabels", "polygonlabels"):
            continue
        names = value.get(kind) or []
        if len(names) != 1 or names[0] not in class_names[1:]:
            raise CrackalError(f"a {kind} result is labelled {names}; each needs one of the project's classes {class_names[1:]}")
        if kind == "brushlabels":
            if value.get("format", "rle") != "rle" or "rle" not in value:
                raise CrackalError("only brush results in Label Studio's 'rle' format can be imported")
            region = rle_to_mask(value["rle"], height, width)
        else:
            region = polygon_mask(value.get("points") or [], height, width)
        mask[region] = class_names.index(names[0])
    return mask
