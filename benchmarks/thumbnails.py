"""Benchmark: thumbnail generation (what `/media/thumbnail` does on a cache miss).

Makes every configured thumbnail size from photos of common sizes (JPEG from a
phone camera, PNG screenshots), one at a time on one core, as the server does
in a worker thread.

    python -m benchmarks.thumbnails [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from PIL import Image

from homeserver.services.media import THUMBNAIL_SIZES, make_thumbnail

SOURCES = (("photo 4032x3024 JPEG", (4032, 3024), "JPEG"), ("photo 1600x1200 JPEG", (1600, 1200), "JPEG"),
           ("screenshot 1920x1080 PNG", (1920, 1080), "PNG"))


def _source(directory: Path, size: tuple[int, int], fmt: str) -> Path:
    """A noisy image (compresses like a photo rather than a flat colour)."""
    rng = random.Random(5)
    small = Image.frombytes("RGB", (size[0] // 16, size[1] // 16), rng.randbytes(size[0] // 16 * (size[1] // 16) * 3))
    path = directory / f"{size[0]}x{size[1]}.{fmt.lower()}"
    small.resize(size, Image.BILINEAR).save(path, fmt)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for label, size, fmt in SOURCES:
            path = _source(Path(tmp), size, fmt)
            for width, height, method in THUMBNAIL_SIZES:
                timings = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    make_thumbnail(path, width, height, method)
                    timings.append((time.perf_counter() - start) * 1000)
                print(f"{label:26} -> {width:3}x{height:<3} {method:5}: {statistics.median(timings):7.1f} ms")


if __name__ == "__main__":
    main()
