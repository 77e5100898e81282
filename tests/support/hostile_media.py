"""Hostile media, made here with Pillow and a few bytes of hand-written structure.

Images that should be accepted show one picture: bright upper half, dark lower half, upright.
A preview that is blank, rotated, inverted or taken from the wrong frame does not show it.
"""

import io
import random
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image, ImageDraw

BRIGHT, DARK = 230, 30
SIZE = (120, 160)  # portrait: a preview turned sideways is landscape


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def upright(size=SIZE, mode="RGB") -> Image.Image:
    """The test picture: bright upper half, dark lower half."""
    image = Image.new("L", size, DARK)
    ImageDraw.Draw(image).rectangle([0, 0, size[0], size[1] // 2 - 1], fill=BRIGHT)
    return image.convert(mode)


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_png_chunk(png: bytes, chunk: bytes) -> bytes:
    """Insert a chunk right after IHDR (8-byte signature + 25-byte IHDR)."""
    return png[:33] + chunk + png[33:]


# --- Accepted: each must come out as the upright picture ------------------------------------------

def cmyk_jpeg() -> bytes:
    return encode(upright(mode="CMYK"), "JPEG", quality=90)


def png_16_bit() -> bytes:
    pixels = np.full(SIZE[::-1], 3_000, dtype=np.uint16)
    pixels[: SIZE[1] // 2] = 60_000
    image = Image.fromarray(pixels)
    assert image.mode.startswith("I;16")
    return encode(image, "PNG")


def exif_rotated_jpeg() -> bytes:
    """Stored sideways with Orientation 6 ("rotate 90° clockwise to view"), as a camera held
    upright writes it."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(upright().transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif.tobytes())


def animated_webp() -> bytes:
    """The picture first, then frames that would give a blank preview if used instead."""
    frames = [upright(), Image.new("RGB", SIZE, "black"), Image.new("RGB", SIZE, "white")]
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)


def animated_gif() -> bytes:
    frames = [upright(mode="P")] + [Image.new("P", SIZE, i % 2 * 255) for i in range(40)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=20, loop=0)


def jpeg_then_html() -> bytes:
    return encode(upright(), "JPEG", quality=90) + b"<html><body><script>alert(document.domain)</script></body></html>"


def png_then_zip() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("index.html", "<script>alert(1)</script>")
    return encode(upright(), "PNG") + archive.getvalue()


def tall_strip() -> bytes:
    """1 × 4000 pixels: the previews and PDQ still need at least one pixel on each side."""
    return encode(upright(size=(1, 4000)), "PNG")


ACCEPTED = {
    "cmyk-jpeg": (cmyk_jpeg, "image/jpeg"),
    "16-bit-png": (png_16_bit, "image/png"),
    "exif-rotated-jpeg": (exif_rotated_jpeg, "image/jpeg"),
    "animated-webp": (animated_webp, "image/webp"),
    "animated-gif-40-frames": (animated_gif, "image/gif"),
    "polyglot-jpeg-html": (jpeg_then_html, "image/jpeg"),
    "polyglot-png-zip": (png_then_zip, "image/png"),
    "1x4000-strip": (tall_strip, "image/png"),
}


# --- Rejected ----------------------------------------------------------------------------------------

def truncated_jpeg() -> bytes:
    data = encode(upright(size=(640, 480)), "JPEG", quality=90)
    return data[: len(data) // 2]


def truncated_png() -> bytes:
    data = encode(Image.frombytes("RGB", (256, 256), random.Random(1).randbytes(256 * 256 * 3)), "PNG")
    return data[: len(data) // 2]


def png_bomb() -> bytes:
    """A valid PNG header announcing 40000 × 40000 (1.6 gigapixels), a small IDAT."""
    ihdr = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 40_001 * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_bomb() -> bytes:
    """A small JPEG whose frame header says 65000 × 65000."""
    data = bytearray(encode(Image.new("RGB", (16, 16), "red"), "JPEG"))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 65_000, 65_000)
    return bytes(data)


def gif_bomb() -> bytes:
    """A GIF whose logical screen is 65535 × 65535."""
    data = bytearray(encode(Image.new("P", (16, 16), 1), "GIF"))
    struct.pack_into("<HH", data, 6, 65_535, 65_535)
    return bytes(data)


def webp_bomb() -> bytes:
    """An animated WebP whose canvas says 16000 × 16000."""
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "blue")]
    data = bytearray(encode(frames[0], "WEBP", save_all=True, append_images=frames[1:]))
    vp8x = data.find(b"VP8X")
    data[vp8x + 12 : vp8x + 15] = (16_000 - 1).to_bytes(3, "little")
    data[vp8x + 15 : vp8x + 18] = (16_000 - 1).to_bytes(3, "little")
    return bytes(data)


def ztxt_bomb() -> bytes:
    """A PNG with a 200 MB text chunk compressed to 200 KB."""
    body = b"Comment\x00\x00" + zlib.compress(b"A" * 200_000_000, 9)
    return with_png_chunk(encode(upright(), "PNG"), png_chunk(b"zTXt", body))


def iccp_bomb() -> bytes:
    """A PNG with a 200 MB colour profile compressed to 200 KB."""
    body = b"icc\x00\x00" + zlib.compress(b"\x00" * 200_000_000, 9)
    return with_png_chunk(encode(upright(), "PNG"), png_chunk(b"iCCP", body))


def gif_3000_frames() -> bytes:
    rng = random.Random(3)  # distinct frames, so the encoder cannot merge them
    frames = [Image.frombytes("L", (8, 8), rng.randbytes(64)) for _ in range(3000)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=10)


def webp_2000_frames() -> bytes:
    rng = random.Random(2)  # distinct frames, so the encoder cannot merge them
    frames = [Image.frombytes("RGB", (16, 16), rng.randbytes(16 * 16 * 3)) for _ in range(2000)]
    return encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=10, quality=10, method=0)


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
       b'<script>alert(document.domain)</script><rect width="100" height="100"/></svg>')


def html_then_jpeg() -> bytes:
    return b"<html><script>alert(1)</script></html>" + encode(upright(), "JPEG")


def zip_with_png() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.png", encode(upright(), "PNG"))
    return archive.getvalue()


# name: (bytes, content type sent, status, words in the reason)
REJECTED = {
    "zero-bytes": (lambda: b"", "image/jpeg", 400, "empty"),
    "truncated-jpeg": (truncated_jpeg, "image/jpeg", 400, "truncated"),
    "truncated-png": (truncated_png, "image/png", 400, "truncated"),
    "png-bomb": (png_bomb, "image/png", 413, "pixels"),
    "jpeg-bomb": (jpeg_bomb, "image/jpeg", 413, "pixels"),
    "gif-screen-bomb": (gif_bomb, "image/gif", 413, "pixels"),
    "webp-canvas-bomb": (webp_bomb, "image/webp", 413, "pixels"),
    "png-ztxt-bomb": (ztxt_bomb, "image/png", 400, "corrupt"),
    "png-iccp-bomb": (iccp_bomb, "image/png", 400, "corrupt"),
    "gif-3000-frames": (gif_3000_frames, "image/gif", 413, "frames"),
    "webp-2000-frames": (webp_2000_frames, "image/webp", 413, "frames"),
    "svg": (lambda: SVG, "image/svg+xml", 415, "not a supported image"),
    "svg-as-octet-stream": (lambda: SVG, "application/octet-stream", 415, "not a supported image"),
    "polyglot-html-then-jpeg": (html_then_jpeg, "image/jpeg", 415, "not a supported image"),
    "zip-holding-a-png": (zip_with_png, "application/zip", 415, "not a supported image"),
}


# --- At the pixel limit: accepted, and the memory they need is bounded ---------------------------

def png_16_bit_at_the_limit() -> bytes:
    """49 megapixels of 16-bit grey in about 100 KB."""
    pixels = np.full((7000, 7000), 40_000, dtype=np.uint16)
    pixels[:3500] = 1_000
    return encode(Image.fromarray(pixels), "PNG")


def rgba_png_at_the_limit() -> bytes:
    """49 megapixels with transparency in about 200 KB."""
    return encode(Image.new("RGBA", (7000, 7000), (0, 128, 128, 100)), "PNG")
