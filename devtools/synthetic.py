"""Synthetic media: shapes, noise and text drawn by Pillow. The only media demo data,
tests and benchmarks ever use."""

import io
import random

from PIL import Image, ImageDraw


def synthetic_image(seed: int, *, size=(640, 480), fmt="JPEG", text=None, noise=True, **save) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    if noise:
        # Coarse noise scaled up keeps files realistic in size without slow per-pixel work.
        cells = Image.frombytes("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)), rng.randbytes(3 * max(1, size[0] // 8) * max(1, size[1] // 8)))
        image = Image.blend(image, cells.resize(size, Image.Resampling.BILINEAR), 0.35)
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        box = [x0, y0, x0 + rng.randrange(20, max(21, size[0] // 2)), y0 + rng.randrange(20, max(21, size[1] // 2))]
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    draw.text((10, 10), text or f"SYNTHETIC {seed}", fill=(255, 255, 255))
    out = io.BytesIO()
    if fmt == "JPEG":
        save.setdefault("quality", 85)
    image.save(out, fmt, **save)
    return out.getvalue()
