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


def synthetic_video(seed: int, *, seconds: float = 3.0, size=(320, 240), fps: int = 10, codec: str = "libx264",
                    container: str = "mp4", audio: bool = False, cuts: int = 1) -> bytes:
    """A video drawn here: coloured shapes moving over noise, a scene cut or more (the colours
    change), a frame counter; optionally a sine tone. Encoded with PyAV's own FFmpeg."""
    import math

    import av
    import numpy as np

    rng = random.Random(seed)
    out = io.BytesIO()
    total = max(1, round(seconds * fps))
    scene_length = max(1, total // (cuts + 1))
    # bitexact: no random ids or dates in the container, so the same seed makes the same bytes.
    with av.open(out, mode="w", format=container, options={"fflags": "+bitexact"}) as box:
        stream = box.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        tone = box.add_stream("aac" if container == "mp4" else "libopus", rate=48000) if audio else None
        palette = [tuple(rng.randrange(256) for _ in range(3)) for _ in range(cuts + 1)]
        for n in range(total):
            scene = min(cuts, n // scene_length)
            image = Image.new("RGB", size, palette[scene])
            draw = ImageDraw.Draw(image)
            x = (n * 7 + seed * 13) % max(1, size[0] - 60)
            draw.ellipse([x, size[1] // 3, x + 60, size[1] // 3 + 60], fill=(255 - palette[scene][0], 200, 40))
            draw.rectangle([size[0] - x - 50, 20, size[0] - x, 70], fill=(30, 30 + 50 * scene % 200, 220))
            draw.text((8, size[1] - 20), f"SYNTHETIC {seed} frame {n}", fill=(255, 255, 255))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                box.mux(packet)
        for packet in stream.encode():
            box.mux(packet)
        if tone is not None:
            samples = tone.codec_context.frame_size or 1024
            for k in range(int(seconds * 48000 / samples)):
                t = [(k * samples + i) / 48000 for i in range(samples)]
                wave = np.array([[0.2 * math.sin(2 * math.pi * 440 * x) for x in t]], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = 48000, k * samples
                for packet in tone.encode(frame):
                    box.mux(packet)
            for packet in tone.encode():
                box.mux(packet)
    return out.getvalue()


def synthetic_gif(seed: int, *, size=(320, 240), frames: int = 6) -> bytes:
    """An animated GIF of coloured frames (it must never animate on the review page)."""
    rng = random.Random(seed)
    images = []
    for n in range(frames):
        image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
        ImageDraw.Draw(image).text((10, 10), f"SYNTHETIC GIF {seed} frame {n}", fill=(255, 255, 255))
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=150, loop=0)
    return out.getvalue()


def synthetic_variant(data: bytes, kind: str, *, amount: float = 0.0) -> bytes:
    """A near-copy of a synthetic picture, as the web makes them (a JPEG): "reencode" (at
    quality `amount`, default 40), "resize" (to `amount` of its size, default 0.75), "crop" (`amount`
    of each side's length cut off, shared by both ends, default 0.005) or "brightness" (times 1 +
    `amount`, default 0.1)."""
    from PIL import ImageEnhance

    image = Image.open(io.BytesIO(data)).convert("RGB")
    width, height = image.size
    quality = 90
    if kind == "reencode":
        quality = int(amount or 40)
    elif kind == "resize":
        share = amount or 0.75
        image = image.resize((max(1, round(width * share)), max(1, round(height * share))), Image.Resampling.LANCZOS)
    elif kind == "crop":
        cut = (amount or 0.005) / 2
        image = image.crop((round(width * cut), round(height * cut), round(width * (1 - cut)), round(height * (1 - cut))))
    elif kind == "brightness":
        image = ImageEnhance.Brightness(image).enhance(1 + (amount or 0.1))
    else:
        raise ValueError(f"unknown variant {kind}")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()
