"""Peak memory of scoring an unlabelled pool: 200 images against 2,000 (I = 20).

    .venv/bin/python benchmarks/pool_memory.py [--small 200] [--large 2000] [--size 320x480]

Each pool is scored in a fresh process (images generated on the fly, as a lazy pool reads
them from disk) and its peak resident memory (ru_maxrss) is reported. Scoring streams the
pool in batches, so the larger pool should need no more memory than the smaller one
(target: at most 1.2 times). The table goes to docs/benchmarks/pool_memory.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from _common import hardware, write_docs  # noqa: E402


class GeneratedPool:
    """``count`` images made on demand (nothing is kept), like a pool read lazily from disk."""

    def __init__(self, count: int, size: tuple[int, int]) -> None:
        self.count, self.size = count, size

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        import numpy as np

        rng = np.random.default_rng(0)
        for _ in range(self.count):
            yield rng.integers(0, 255, (*self.size, 3), dtype=np.uint8)


def score_once(count: int, size: tuple[int, int], iterations: int) -> dict:
    import torch

    from crackal.acquisition.score import score_pool
    from crackal.models import create_model

    torch.manual_seed(0)
    model = create_model("unet", 2).eval().to(memory_format=torch.channels_last)
    started = time.perf_counter()
    scores = score_pool(model, GeneratedPool(count, size), "bald", "mean", iterations=iterations, batch_size=4)
    return {
        "images": count,
        "scores": len(scores),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=2000)
    parser.add_argument("--size", default="320x480")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    if args.child:
        print(json.dumps(score_once(args.child, size, args.iterations)))
        return
    results = []
    for count in (args.small, args.large):
        out = subprocess.run([sys.executable, __file__, "--child", str(count), "--size", args.size,
                              "--iterations", str(args.iterations)], capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"pool of {count:5d} images {args.size}: peak RSS {results[-1]['peak_rss_mb']:.0f} MB, "
              f"{results[-1]['seconds']:.0f} s ({count / results[-1]['seconds']:.1f} images/s)")
    ratio = results[1]["peak_rss_mb"] / results[0]["peak_rss_mb"]
    print(f"peak memory ratio {args.large}/{args.small}: {ratio:.3f} (target <= 1.2)")
    write_docs("pool_memory",
               f"Pools of {args.small:,} and {args.large:,} images {args.size}, I = {args.iterations}, each scored in its "
               f"own process; peak memory ratio {ratio:.3f} (target <= 1.2).",
               (["pool", "peak resident memory"], [[f"{r['images']:,} images", f"{r['peak_rss_mb']:,.0f} MB"] for r in results]),
               hardware=hardware())


if __name__ == "__main__":
    main()
