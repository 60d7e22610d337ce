"""Awkward files for the image and mask readers: each is read correctly or refused with one
``CrackalError``; never another exception, a silently wrong array, a warning or a hang."""

from __future__ import annotations

import io
import os
import struct
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from crackal.data.io import _orient, image_size, read_image, read_raw_mask
from crackal.data.layout import find_pairs, validate_pairs
from crackal.errors import CrackalError

H, W = 24, 40
SECONDS = 5.0  # each read must finish well within this


def _rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    image = np.zeros((H, W, 3), np.uint8)
    image[:, : W // 2] = (200, 40, 40)
    image[:, W // 2:] = (30, 160, 220)
    return image + rng.integers(0, 3, image.shape, dtype=np.uint8)


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def huge_png(claimed: tuple[int, int] = (100_000, 100_000)) -> bytes:
    """A tiny PNG whose IHDR claims ``claimed`` (width, height) pixels, with a valid CRC."""
    data = bytearray(_png_bytes(Image.new("L", (4, 4))))
    ihdr = 8  # signature; then length (4), type (4), data (13), crc (4)
    struct.pack_into(">II", data, ihdr + 8, *claimed)
    struct.pack_into(">I", data, ihdr + 8 + 13, zlib.crc32(bytes(data[ihdr + 4: ihdr + 8 + 13])) & 0xFFFFFFFF)
    return bytes(data)


def _gradient16(bits: int) -> np.ndarray:
    top = 2**bits - 1
    return np.tile(np.linspace(0, top, W).round().astype(np.uint16), (H, 1))


# each case writes its file and returns (path, check of read_image's result or None, check of read_raw_mask's)
# a check of None means: the reader must raise CrackalError


def case_truncated_png(tmp):
    path = tmp / "trunc.png"
    data = _png_bytes(Image.fromarray(_rgb()))
    path.write_bytes(data[: len(data) // 2])
    return path, None, None


def case_truncated_jpeg(tmp):
    path = tmp / "trunc.jpg"
    Image.fromarray(_rgb()).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:-200])
    return path, None, None


def case_truncated_tiff(tmp):
    import tifffile

    path = tmp / "trunc.tif"
    tifffile.imwrite(path, _gradient16(16))
    path.write_bytes(path.read_bytes()[:300])
    return path, None, None


def case_truncated_png16_colour(tmp):
    import cv2

    path = tmp / "trunc_rgb16.png"
    cv2.imwrite(str(path), np.random.default_rng(4).integers(0, 4096, (H, W, 3)).astype(np.uint16))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path, None, None


def case_png16_colour(tmp):
    import cv2

    path = tmp / "rgb16.png"
    rgb = np.stack([_gradient16(12), _gradient16(12), _gradient16(12)], 2)
    cv2.imwrite(str(path), rgb)

    def image(a):
        row = a[0, :, 0].astype(int)
        assert (np.diff(row) >= 0).all() and row[0] <= 2 and row[-1] >= 253

    return path, image, lambda m: np.testing.assert_array_equal(m, _gradient16(12))  # equal channels: a grey mask


def case_zero_bytes(tmp):
    path = tmp / "empty.png"
    path.write_bytes(b"")
    return path, None, None


def case_random_bytes_png(tmp):
    path = tmp / "noise.png"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path, None, None


def case_random_bytes_jpg(tmp):
    path = tmp / "noise.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + np.random.default_rng(2).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path, None, None


def case_random_bytes_tif(tmp):
    path = tmp / "noise.tif"
    path.write_bytes(b"II*\x00" + np.random.default_rng(3).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path, None, None


def case_huge_declared_size(tmp):
    path = tmp / "bomb.png"
    path.write_bytes(huge_png())
    return path, None, None


def case_jpeg_named_png(tmp):
    path = tmp / "really_a_jpeg.png"
    Image.fromarray(_rgb()).save(path, format="JPEG", quality=95)

    def image(a):
        assert np.abs(a.astype(int) - _rgb()).mean() < 6

    return path, image, None  # a colour JPEG is no mask


def case_png_named_jpg(tmp):
    path = tmp / "really_a_png.jpg"
    Image.fromarray(_rgb()).save(path, format="PNG")
    return path, lambda a: np.testing.assert_array_equal(a, _rgb()), None


def case_grey_png_named_jpg_mask(tmp):
    path = tmp / "grey_png.jpg"
    mask = np.zeros((H, W), np.uint8)
    mask[5, 3:30] = 255
    Image.fromarray(mask).save(path, format="PNG")
    return path, lambda a: np.testing.assert_array_equal(a, np.repeat(mask[:, :, None], 3, 2)), \
        lambda m: np.testing.assert_array_equal(m, mask)


def case_grey16_png_12bit(tmp):
    path = tmp / "grey12.png"
    Image.fromarray(_gradient16(12)).save(path)

    def image(a):
        row = a[0, :, 0].astype(int)
        assert (np.diff(row) >= 0).all() and row[0] <= 2 and row[-1] >= 253  # a gradient, full range

    return path, image, lambda m: np.testing.assert_array_equal(m, _gradient16(12))


def case_grey16_tiff_full(tmp):
    import tifffile

    path = tmp / "grey16.tif"
    tifffile.imwrite(path, _gradient16(16))

    def image(a):
        assert np.abs(a[..., 0].astype(int) - _gradient16(16) / 257).max() <= 2

    return path, image, lambda m: np.testing.assert_array_equal(m, _gradient16(16))


def case_rgb16_tiff(tmp):
    import tifffile

    path = tmp / "rgb16.tif"
    rgb = np.stack([_gradient16(12), _gradient16(12)[:, ::-1], np.full((H, W), 2000, np.uint16)], 2)
    tifffile.imwrite(path, rgb, photometric="rgb")

    def image(a):
        assert a[0, 0, 0] <= 2 and a[0, -1, 0] >= 253 and a[0, 0, 1] >= 253 and 100 < a[0, 0, 2] < 140

    return path, image, None


def case_float32_tiff(tmp):
    import tifffile

    path = tmp / "float.tif"
    data = np.tile(np.linspace(-3.0, 7.5, W, dtype=np.float32), (H, 1))
    tifffile.imwrite(path, data)

    def image(a):
        row = a[0, :, 0].astype(int)
        assert (np.diff(row) >= 0).all() and row[0] <= 2 and row[-1] >= 253

    return path, image, lambda m: np.testing.assert_array_equal(m, data)


def case_rgba_png(tmp):
    path = tmp / "rgba.png"
    rgba = np.dstack([_rgb(), np.full((H, W), 90, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(path)
    return path, lambda a: np.testing.assert_array_equal(a, _rgb()), None  # alpha dropped; a colour mask is refused


def case_la_png(tmp):
    path = tmp / "la.png"
    grey = np.tile(np.arange(W, dtype=np.uint8) * 6, (H, 1))
    Image.fromarray(np.dstack([grey, np.full((H, W), 7, np.uint8)]), "LA").save(path)
    return path, lambda a: np.testing.assert_array_equal(a, np.repeat(grey[:, :, None], 3, 2)), \
        lambda m: np.testing.assert_array_equal(m, grey)


def case_palette_png(tmp):
    path = tmp / "palette.png"
    indices = np.zeros((H, W), np.uint8)
    indices[:, 10:20], indices[:, 20:] = 1, 2
    img = Image.fromarray(indices, "P")
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * 759)
    img.save(path)
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)[indices]
    return path, lambda a: np.testing.assert_array_equal(a, colours), lambda m: np.testing.assert_array_equal(m, indices)


def case_one_bit_png(tmp):
    path = tmp / "bits.png"
    bits = np.zeros((H, W), bool)
    bits[4:8, 5:25] = True
    Image.fromarray(bits).convert("1").save(path)
    return path, lambda a: np.testing.assert_array_equal(a[..., 0], bits * 255), \
        lambda m: np.testing.assert_array_equal(m, bits.astype(np.uint8))


def case_cmyk_jpeg(tmp):
    path = tmp / "cmyk.jpg"
    cmyk = np.zeros((H, W, 4), np.uint8)
    cmyk[:, :, 1:3] = 255  # magenta + yellow = red
    Image.fromarray(cmyk, "CMYK").save(path, quality=95)

    def image(a):
        assert np.abs(a.astype(int) - [255, 0, 0]).max() < 12

    return path, image, None


def case_exif_rotated_jpeg(tmp):
    path = tmp / "rotated.jpg"
    stored = np.zeros((H, W, 3), np.uint8)
    stored[:, : W // 2] = 30  # dark left half as stored
    stored[:, W // 2:] = 220
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: display rotated 90 degrees clockwise
    Image.fromarray(stored).save(path, quality=95, exif=exif.tobytes())

    def image(a):
        assert a.shape == (W, H, 3)  # displayed: portrait
        assert a[: W // 2 - 2].mean() < 50 and a[W // 2 + 2:].mean() > 200  # the stored left half is on top

    def mask(m):  # grey, so also a valid mask: read as displayed too
        assert m.shape == (W, H) and m[: W // 2 - 2].mean() < 50 and m[W // 2 + 2:].mean() > 200

    return path, image, mask


def case_name_with_spaces(tmp):
    path = tmp / "a name with  spaces.png"
    Image.fromarray(_rgb()).save(path)
    return path, lambda a: np.testing.assert_array_equal(a, _rgb()), None


def case_non_utf8_name(tmp):
    name = os.path.join(os.fsencode(tmp), b"caf\xe9.png")
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
    except (OSError, UnicodeError):
        pytest.skip("this filesystem refuses non-UTF-8 file names")
    with os.fdopen(fd, "wb") as f:
        f.write(_png_bytes(Image.fromarray(_rgb())))
    return Path(os.fsdecode(name)), lambda a: np.testing.assert_array_equal(a, _rgb()), None


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


def _call(reader, path: Path):
    """(result or CrackalError, seconds); any other exception or warning fails the test."""
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            result = reader(path)
        except CrackalError as exc:
            result = exc
    seconds = time.monotonic() - start
    assert seconds < SECONDS, f"{reader.__name__}({path.name}) took {seconds:.1f}s"
    return result


@pytest.mark.parametrize("case", sorted(CASES))
def test_reader_reads_correctly_or_refuses_clearly(tmp_path, capfd, case):
    path, check_image, check_mask = CASES[case](tmp_path)
    capfd.readouterr()
    for reader, check in ((read_image, check_image), (read_raw_mask, check_mask)):
        result = _call(reader, path)
        if check is None:
            assert isinstance(result, CrackalError), f"{reader.__name__} should refuse {path.name}"
            message = str(result)
            assert path.name in message and "\n" not in message
            continue
        assert not isinstance(result, CrackalError), f"{reader.__name__}({path.name}): {result}"
        if reader is read_image:
            assert result.dtype == np.uint8 and result.ndim == 3 and result.shape[2] == 3
            assert result.flags.c_contiguous
        else:
            assert result.ndim == 2
        check(result)
    size = _call(image_size, path)  # header only: a truncated file may still give its size
    if check_image is not None:
        assert size == read_image(path).shape[:2]
    elif not isinstance(size, CrackalError):
        assert "trunc" in path.name and size == (H, W)
    printed = capfd.readouterr()
    assert printed.out == printed.err == "", "the readers print nothing (no libpng or tifffile chatter)"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow_exif_transpose(tmp_path, orientation):
    stored = np.random.default_rng(orientation).integers(0, 255, (H, W, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    Image.fromarray(stored).save(path, exif=exif.tobytes())
    with Image.open(path) as img:
        expected = np.array(ImageOps.exif_transpose(img))
    np.testing.assert_array_equal(read_image(path), expected)
    np.testing.assert_array_equal(_orient(stored, orientation), expected)
    assert image_size(path) == expected.shape[:2]


def test_bad_files_in_a_dataset_give_one_error_each(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    good = np.zeros((H, W), np.uint8)
    for name in ("good", "bomb", "empty", "noise"):
        Image.fromarray(good).save(tmp_path / "masks" / f"{name}.png")
    Image.fromarray(_rgb()).save(tmp_path / "images" / "good.png")
    (tmp_path / "images" / "bomb.png").write_bytes(huge_png())
    (tmp_path / "images" / "empty.png").write_bytes(b"")
    (tmp_path / "images" / "noise.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    start = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CrackalError, match=r"3 bad files") as caught:
            validate_pairs(find_pairs(tmp_path), 2)
        good_pairs, problems = validate_pairs(find_pairs(tmp_path), 2, skip_invalid=True)
    assert time.monotonic() - start < SECONDS
    message = str(caught.value)
    assert "bomb.png: image of 100000x100000" in message and "empty.png is an empty file" in message
    assert [p.name for p in good_pairs] == ["good"] and len(problems) == 3


def test_cli_prints_one_error_line_and_exits_1(tmp_path, capsys):
    from crackal.cli import main

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "images" / "bomb.png").write_bytes(huge_png())
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / "bomb.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main(["train", str(tmp_path), "--out", str(tmp_path / "run"), "--epochs", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err + captured.out
    assert "error:" in captured.err and "bomb.png" in captured.err and "CRACKAL_MAX_PIXELS" in captured.err
    assert not (tmp_path / "run" / "checkpoints").exists()
