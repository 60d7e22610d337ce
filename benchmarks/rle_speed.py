"""Label Studio brush RLE: crackal's numpy encoder and decoder against the official SDK's, on a
4000 x 3000 crack mask (a drone photo's size) and a 1000 x 750 one, timed side by side.

    .venv/bin/python benchmarks/rle_speed.py   (needs label-studio-sdk, which scripts/setup.sh installs)
"""

from __future__ import annotations

import time

import numpy as np
from _common import hardware, markdown_table, write_docs
from skimage.draw import line
from skimage.morphology import dilation, disk

from crackal.interop.label_studio import mask_to_rle, rle_to_mask


def crack_mask(height: int, width: int, cracks: int, seed: int = 0) -> np.ndarray:
    """Random straight cracks about 7 px wide, like a full-resolution prediction."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), bool)
    for _ in range(cracks):
        rows, cols = line(*(int(v) for v in rng.integers(0, [height, width, height, width])))
        mask[rows, cols] = True
    return dilation(mask, disk(3))


def best_of(repeats: int, work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    from label_studio_sdk.converter.brush import decode_rle as sdk_decode
    from label_studio_sdk.converter.brush import mask2rle as sdk_encode

    rows = []
    for height, width, cracks in ((3000, 4000, 60), (750, 1000, 15)):
        mask = crack_mask(height, width, cracks)
        encode_s, rle = best_of(3, lambda: mask_to_rle(mask))
        decode_s, back = best_of(3, lambda: rle_to_mask(rle, height, width))
        assert (back == mask).all()
        sdk_encode_s, sdk_rle = best_of(1, lambda: sdk_encode(mask.astype(np.uint8) * 255))
        sdk_decode_s, sdk_back = best_of(1, lambda: sdk_decode(rle))
        assert sdk_rle == rle and (sdk_back.reshape(height, width, 4)[:, :, 3] == mask * 255).all()
        rows.append({"mask": f"{width} x {height}", "defect share": f"{mask.mean():.1%}", "RLE bytes": len(rle),
                     "crackal encode s": encode_s, "crackal decode s": decode_s,
                     "SDK encode s": sdk_encode_s, "SDK decode s": sdk_decode_s,
                     "speed-up (encode, decode)": f"{sdk_encode_s / encode_s:.0f}x, {sdk_decode_s / decode_s:.0f}x"})
        print(rows[-1], flush=True)
    print(markdown_table(rows))
    print(write_docs("rle_speed", rows, hardware=hardware()))


if __name__ == "__main__":
    main()
