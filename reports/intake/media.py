"""Media: verify that bytes are a supported image, hash them, and make blurred previews.

Nothing here touches the database or the store; intake.py and tasks.py call it.
"""

import hashlib
import io
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pdqhash
from django.conf import settings
from PIL import Image, ImageFilter, ImageOps

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
GENERIC_TYPES = {"", "application/octet-stream"}
EXIF_ORIENTATION = 0x0112
PDQ_SIDE = 512  # PDQ's reference tools hash at most 512 px; larger decodes are wasted work
THUMB_SIDE = 256
# The inspect view, at most 600 px tall by design; 400 px of a 20-to-48-cell blur is already
# more than the detail it holds, and the page scales it to the reviewer's size setting.
INSPECT_SIDE = 400
# The preview is rebuilt from a tiny copy: at this many pixels on the long side no detail survives.
BLUR_CELLS = {1: 48, 2: 32, 3: 20}
SMOOTH_PIXELS_PER_CELL = 4
# Previews are made from a decode fitted within this size: two pixels a cell of the finest blur.
PREVIEW_SOURCE_SIDE = 2 * max(BLUR_CELLS.values())


class MediaRejected(Exception):
    """The bytes cannot be accepted. status is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ImageFacts:
    mime_type: str
    size_bytes: int
    width: int
    height: int
    frames: int
    md5: str
    sha1: str
    sha256: str
    pdq: str
    pdq_quality: int
    duration: float | None = None  # seconds, for moving media


def _open(data: bytes) -> Image.Image:
    """Open (header only) with the pixel limit enforced before any decoding."""
    limit = settings.TSREVIEW_MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRejected(413, f"image has more than {limit} pixels") from None
    except Image.UnidentifiedImageError:
        raise MediaRejected(415, "not a supported image: JPEG, PNG, GIF or WebP") from None
    except (OSError, SyntaxError, ValueError):
        raise MediaRejected(400, "image header is corrupt") from None
    if image.width * image.height > limit or image.width == 0 or image.height == 0:
        raise MediaRejected(413, f"image has more than {limit} pixels")
    return image


def _frame_count(image: Image.Image) -> int:
    # n_frames on GIF walks the file; the frame limit bounds that work.
    try:
        frames = getattr(image, "n_frames", 1)
    except (OSError, SyntaxError, ValueError, EOFError):
        raise MediaRejected(400, "image data is truncated or corrupt") from None
    if frames > settings.TSREVIEW_MAX_FRAMES:
        raise MediaRejected(413, f"image has {frames} frames; the limit is {settings.TSREVIEW_MAX_FRAMES}")
    return frames


def decode_reduced(image: Image.Image, side: int, *, grey: bool = False) -> Image.Image:
    """Decode the first frame fitted within side × side, at reduced size where the format
    allows (JPEG DCT scaling), upright (EXIF orientation applied), as RGB (or greyscale).
    Every byte of the frame is still decoded, so truncation and corruption are found here."""
    if image.format == "JPEG":
        # draft() keeps both sides at least as large as asked: ask in the image's own shape,
        # or a landscape picture asked for side × side is decoded at full size.
        scale = side / max(image.size)
        box = (max(1, math.ceil(image.width * scale)), max(1, math.ceil(image.height * scale)))
        image.draft("L" if grey and image.mode in ("L", "RGB") else "RGB", box)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        raise MediaRejected(400, "image data is truncated or corrupt") from None
    image = ImageOps.exif_transpose(_shrink(image, side))
    if grey:
        return image if image.mode == "L" else _to_rgb(image).convert("L")
    return _to_rgb(image)


def _shrink(image: Image.Image, side: int) -> Image.Image:
    """Fit the decoded frame within side × side before any conversion. Formats without
    reduced decoding (PNG, GIF, WebP) arrive at full size, and each conversion of a full-size
    frame would cost its size again: a 100 KB 16-bit PNG of 49 Mpx once needed 1 GB."""
    if image.mode in ("P", "1"):  # these resize by nearest neighbour only
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if max(image.size) > side:
        # 16-bit frames cannot use Pillow's reduce() step; they resize directly.
        gap = None if image.mode.startswith("I;16") else 2.0
        image.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=gap)
    return image


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block only means "as stored"
        return 1


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits rather than clip.
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() or 1
        image = Image.fromarray((array * (255.0 / max(peak, 255))).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def pdq_hash(rgb: Image.Image) -> tuple[str, int]:
    if max(rgb.size) > PDQ_SIDE:
        rgb = rgb.copy()
        rgb.thumbnail((PDQ_SIDE, PDQ_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    vector, quality = pdqhash.compute(np.asarray(rgb))
    return np.packbits(vector.astype(np.uint8)).tobytes().hex(), int(quality)


def file_digests(data: bytes) -> dict[str, str]:
    """The MD5, SHA-1 and SHA-256 of a file's bytes, as ImageFacts names them."""
    return {name: hashlib.new(name, data, usedforsecurity=name == "sha256").hexdigest() for name in ("md5", "sha1", "sha256")}


def image_inspect(data: bytes, *, claimed_type: str, digests: dict[str, str] | None = None) -> ImageFacts:
    """Verify that data is a whole, supported image and compute its hashes (the MD5, SHA-1 and
    SHA-256 given as `digests` when they were taken as the bytes arrived).

    Raises MediaRejected with the status to answer: 400 empty/corrupt/truncated, 413 too
    many pixels or frames, 415 unsupported or not what the client said it was.
    """
    if not data:
        raise MediaRejected(400, "file is empty")
    image = _open(data)
    mime_type = FORMATS[image.format]
    claimed = (claimed_type or "").split(";")[0].strip().lower()
    if claimed not in GENERIC_TYPES and claimed != mime_type:
        raise MediaRejected(415, f"file was sent as {claimed} but its bytes are {mime_type}")
    frames = _frame_count(image)
    if frames > 1:
        image.seek(0)
    width, height = image.size
    rgb = decode_reduced(image, PDQ_SIDE)
    if _orientation(image) in (5, 6, 7, 8):  # stored sideways; recorded (and shown) upright
        width, height = height, width
    pdq, quality = pdq_hash(rgb)
    return ImageFacts(
        mime_type=mime_type,
        size_bytes=len(data),
        width=width,
        height=height,
        frames=frames,
        **(digests or file_digests(data)),
        pdq=pdq,
        pdq_quality=quality,
    )


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    """size scaled down (never up) to fit within side × side."""
    scale = min(1.0, side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def preview(grey: Image.Image, *, size: tuple[int, int], blur: int) -> bytes:
    """A blurred greyscale JPEG of `size` pixels.

    The picture is shrunk to a few dozen cells and scaled back up with a blur, so nothing
    identifiable survives whatever the source size; `grey` needs no more pixels than a few a
    cell. More pixels than the inspect size would carry no more detail: the page scales it to
    the reviewer's chosen size."""
    cells = BLUR_CELLS[blur]
    tiny = grey.resize(_fit(grey.size, cells), Image.Resampling.BOX)
    # The smoothing is done at a few pixels per cell, where it costs a fraction of the full
    # size's; the result holds nothing finer than a cell, so scaling it up after changes it by
    # less than one grey level on average.
    work = _fit(size, cells * SMOOTH_PIXELS_PER_CELL)
    smooth = (tiny.resize(work, Image.Resampling.BICUBIC)
              .filter(ImageFilter.GaussianBlur(max(work) / cells / 2))
              .resize(size, Image.Resampling.BILINEAR))
    out = io.BytesIO()
    smooth.save(out, "JPEG", quality=75)
    return out.getvalue()


def previews_make(data: bytes) -> dict[str, bytes]:
    """The thumbnail (strongest blur) and the inspect view at each blur level a reviewer may
    choose, from one decode of the original at a few pixels a cell (a JPEG decodes at an
    eighth of its size, every byte still read), turned grey once. The previews keep the sizes
    they had when they were made from the inspect size: only the work is smaller."""
    image = _open(data)
    stored = image.size
    grey = decode_reduced(image, PREVIEW_SOURCE_SIDE, grey=True)  # upright, as the EXIF says
    # The natural size upright: the stored one, or turned, whichever has the decoded shape.
    shape, aspect = math.log(grey.width / grey.height), math.log(stored[0] / stored[1])
    return blurred_set(grey, natural=stored[::-1] if abs(shape + aspect) < abs(shape - aspect) else stored)


# The kinds blurred_set makes, with or without a sampled frame's prefix: the only views served
# without a reveal (web.review), and stored together as one file (intake.previews). A frame's
# unblurred still is not one of them.
BLURRED_KIND = re.compile(rf"^(frame-\d{{2}}-)?(?:thumb|inspect-[{''.join(map(str, BLUR_CELLS))}])$")


def blurred_set(grey: Image.Image, *, prefix: str = "", thumb: bool = True,
                natural: tuple[int, int] | None = None) -> dict[str, bytes]:
    """Blurred greyscale JPEGs of one picture: the thumbnail (strongest blur) and the inspect
    view at each blur level, named prefix + "thumb" / "inspect-<level>", fitted from the
    picture's natural size (by default grey's own)."""
    natural = natural or grey.size
    previews = {f"{prefix}thumb": preview(grey, size=_fit(natural, THUMB_SIDE), blur=max(BLUR_CELLS))} if thumb else {}
    for level in BLUR_CELLS:
        previews[f"{prefix}inspect-{level}"] = preview(grey, size=_fit(natural, INSPECT_SIDE), blur=level)
    return previews


def greyscale_rendering(data: bytes) -> bytes:
    """The original as the policy lets a reviewer see it without colour: upright, first frame
    only, at its natural size, greyscale, as a PNG (lossless: no detail lost or invented)."""
    image = _open(data)
    grey = decode_reduced(image, max(image.size), grey=True)
    out = io.BytesIO()
    grey.save(out, "PNG")
    return out.getvalue()
