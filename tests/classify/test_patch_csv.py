"""labels.csv of a patch dataset: paths stay inside the data folder, each patch is listed once."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from crackal.classify.data import find_patches
from crackal.errors import CrackalError


def _patches(root, names=("p0.png", "p1.png")):
    (root / "patches").mkdir(parents=True)
    for name in names:
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "patches" / name)
    return root


def test_csv_path_escaping_the_data_folder_is_refused(tmp_path):
    root = _patches(tmp_path / "data")
    (tmp_path / "secret.png").write_bytes(b"")
    for bad in ("../../../../etc/passwd", "../secret.png", "patches/../../secret.png", str(tmp_path / "secret.png"), "/etc/passwd"):
        (root / "labels.csv").write_text(f"path,label\npatches/p0.png,0\n{bad},1\n")
        with pytest.raises(CrackalError, match=r"labels\.csv line 3: .* points outside the data folder"):
            find_patches(root)


def test_csv_symlink_leading_outside_is_refused(tmp_path):
    root = _patches(tmp_path / "data")
    (tmp_path / "outside.png").write_bytes(b"")
    try:
        (root / "patches" / "link.png").symlink_to(tmp_path / "outside.png")
    except OSError:
        pytest.skip("no symlinks here")
    (root / "labels.csv").write_text("path,label\npatches/link.png,1\n")
    with pytest.raises(CrackalError, match="line 2: 'patches/link.png' points outside"):
        find_patches(root)


def test_csv_inside_paths_absolute_or_relative_are_read(tmp_path):
    root = _patches(tmp_path / "data")
    (root / "labels.csv").write_text(f"path,label\npatches/./p0.png,0\n{root / 'patches' / 'p1.png'},1\n")
    items, names = find_patches(root)
    assert [label for _, label in items] == [0, 1] and names == ["no_crack", "crack"]


def test_csv_listing_a_patch_twice_is_refused(tmp_path):
    root = _patches(tmp_path / "data")
    (root / "labels.csv").write_text("path,label\npatches/p0.png,0\npatches/p1.png,1\npatches/../patches/p0.png,1\n")
    with pytest.raises(CrackalError, match="lines 2 and 4 both list"):
        find_patches(root)


def test_csv_from_excel_with_bom_and_bad_encoding(tmp_path):
    root = _patches(tmp_path / "data")
    (root / "labels.csv").write_bytes(b"\xef\xbb\xbfpath,label\r\npatches/p0.png,0\r\npatches/p1.png,1\r\n")
    assert len(find_patches(root)[0]) == 2
    (root / "labels.csv").write_bytes(b"path,label\npatches/caf\xe9.png,0\n")
    with pytest.raises(CrackalError, match="is not UTF-8 text"):
        find_patches(root)
    (root / "labels.csv").write_text("path,label\npatches/p0.png\n")
    with pytest.raises(CrackalError, match="line 2: label None is not an integer"):
        find_patches(root)
