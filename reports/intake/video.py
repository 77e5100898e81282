"""Moving media: videos probed and decoded with PyAV (FFmpeg's libraries from its wheel; no
system ffmpeg), their hashes, and the frame-first derivatives a reviewer sees (DESIGN §5b).

The type is decided from the bytes. Every limit is a setting and each refusal names it; a
file is accepted only when a frame of it decodes."""

import io
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from django.conf import settings
from PIL import Image

from .media import GENERIC_TYPES, PDQ_SIDE, ImageFacts, MediaRejected, blurred_set, file_digests, pdq_hash

# Codecs a reviewer's file may use (the list); anything else is 415.
CODECS = {"h264", "hevc", "vp8", "vp9", "av1", "libdav1d", "libaom-av1"}
# Sheet: up to this many sampled frames in a grid, blurred as one picture.
SHEET_COLUMNS, SHEET_CELLS = 4, 12
STILL_QUALITY = 92
# A played segment is reduced to this many pixels on its long side.
SEGMENT_SIDE = 480
SEGMENT_FPS = 15.0
# Mean absolute change (0..255 per channel) of a tiny colour frame that counts as a cut.
SCENE_CHANGE = 28.0


def is_video(data: bytes) -> bool:
    """ISO base media (MP4, MOV: an ftyp box first) or Matroska/WebM (the EBML magic)."""
    return data[4:8] == b"ftyp" or data[:4] == b"\x1a\x45\xdf\xa3"


def _mime(data: bytes) -> str:
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "video/webm" if b"webm" in data[:64] else "video/x-matroska"
    return "video/quicktime" if data[8:10] == b"qt" else "video/mp4"


def _open(source):
    """A container from bytes or from a seekable file (a stored upload read chunk by chunk)."""
    try:
        # max_pixels: FFmpeg's decoders refuse a larger frame before allocating it, also while
        # the container is probed (which decodes a frame), before _probe can check the size.
        return av.open(io.BytesIO(source) if isinstance(source, bytes) else source, mode="r",
                       options={"probesize": "5000000", "max_pixels": str(settings.TSREVIEW_VIDEO_MAX_PIXELS)})
    except (av.FFmpegError, ValueError, OSError, EOFError):
        raise MediaRejected(400, "video data is truncated or corrupt (no readable container)") from None


@dataclass
class Probe:
    container: object
    stream: object
    width: int
    height: int
    duration: float
    fps: float
    frames: int


def _probe(container) -> Probe:
    """The one video stream and its declared facts, each checked against its limit."""
    streams = list(container.streams)
    videos = [s for s in streams if s.type == "video"]
    if not videos:
        raise MediaRejected(415, "no video stream (audio-only or not a video)")
    if len(streams) > settings.TSREVIEW_VIDEO_MAX_STREAMS:
        raise MediaRejected(413, f"file has {len(streams)} streams; the limit (TSREVIEW_VIDEO_MAX_STREAMS) is "
                                 f"{settings.TSREVIEW_VIDEO_MAX_STREAMS}")
    stream = videos[0]
    codec = stream.codec_context.name if stream.codec_context else ""
    if codec not in CODECS:
        raise MediaRejected(415, f"video codec {codec or 'unknown'} is not supported: H.264, HEVC, VP8, VP9 or AV1")
    width, height = stream.codec_context.width, stream.codec_context.height
    if not width or not height:
        # FFmpeg leaves the size unset when its decoder refused it while probing: over max_pixels
        # (our limit, given in _open), or beyond its own bounds (e.g. 100000 × 100000).
        raise MediaRejected(413, "video stream declares no frame size the decoder accepts: none, or more than the "
                                 f"limit (TSREVIEW_VIDEO_MAX_PIXELS) of {settings.TSREVIEW_VIDEO_MAX_PIXELS} pixels")
    if width * height > settings.TSREVIEW_VIDEO_MAX_PIXELS:
        raise MediaRejected(413, f"frames of {width}×{height} exceed the limit (TSREVIEW_VIDEO_MAX_PIXELS) of "
                                 f"{settings.TSREVIEW_VIDEO_MAX_PIXELS} pixels")
    rate = stream.average_rate or stream.base_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    if not math.isfinite(fps) or fps <= 0:
        raise MediaRejected(400, "video stream declares no usable frame rate")
    if fps > settings.TSREVIEW_VIDEO_MAX_FPS:
        raise MediaRejected(413, f"{fps:g} frames per second exceed the limit (TSREVIEW_VIDEO_MAX_FPS) of "
                                 f"{settings.TSREVIEW_VIDEO_MAX_FPS}")
    if stream.duration is not None and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    if not math.isfinite(duration) or duration < 0:
        raise MediaRejected(400, "video declares an impossible duration")
    if duration > settings.TSREVIEW_VIDEO_MAX_SECONDS:
        raise MediaRejected(413, f"video lasts {duration:.0f} s; the limit (TSREVIEW_VIDEO_MAX_SECONDS) is "
                                 f"{settings.TSREVIEW_VIDEO_MAX_SECONDS} s")
    frames = stream.frames or round(duration * fps)
    if frames > settings.TSREVIEW_VIDEO_MAX_FRAMES:
        raise MediaRejected(413, f"video has {frames} frames; the limit (TSREVIEW_VIDEO_MAX_FRAMES) is "
                                 f"{settings.TSREVIEW_VIDEO_MAX_FRAMES}")
    return Probe(container, stream, width, height, duration, fps, frames)


def _first_frame(probe: Probe) -> Image.Image:
    try:
        for frame in probe.container.decode(probe.stream):
            return frame.to_image()
    except MemoryError:  # FFmpeg's ENOMEM too: a limit, not a corrupt file (intake.decode says which)
        raise
    except (av.FFmpegError, ValueError, OSError, EOFError):
        pass
    raise MediaRejected(400, "no frame of the video decodes (truncated or corrupt)")


def video_inspect(data: bytes, *, claimed_type: str) -> ImageFacts:
    """Verify that data is a supported video within every limit, that a frame of it decodes,
    and compute its hashes (PDQ of the first frame, for similarity). MediaRejected says why."""
    return video_inspect_file(data, head=data[:64], size=len(data), digests=file_digests(data), claimed_type=claimed_type)


def video_inspect_file(source, *, head: bytes, size: int, digests: dict[str, str], claimed_type: str) -> ImageFacts:
    """video_inspect for a file read where it is stored, whose hashes were made as it arrived."""
    claimed = (claimed_type or "").split(";")[0].strip().lower()
    if claimed not in GENERIC_TYPES and not claimed.startswith("video/"):
        raise MediaRejected(415, f"file was sent as {claimed} but its bytes are a video")
    if size > settings.TSREVIEW_MAX_VIDEO_BYTES:
        raise MediaRejected(413, f"video is larger than the limit (TSREVIEW_MAX_VIDEO_BYTES) of "
                                 f"{settings.TSREVIEW_MAX_VIDEO_BYTES} bytes")
    with _open(source) as container:
        probe = _probe(container)
        pdq, quality = pdq_hash(_first_frame(probe).convert("RGB"))
    return ImageFacts(
        mime_type=_mime(head), size_bytes=size, width=probe.width, height=probe.height, frames=max(1, probe.frames),
        md5=digests["md5"], sha1=digests["sha1"], sha256=digests["sha256"], pdq=pdq, pdq_quality=quality,
        duration=round(probe.duration, 3))


# --- Derivatives ----------------------------------------------------------------------------------

def _tiny(frame) -> np.ndarray:
    """A few hundred samples of the frame's colour, for telling scene cuts: taken straight from
    the decoded planes (no conversion of the whole frame) when they are 8-bit 4:2:0."""
    if frame.format.name in ("yuv420p", "yuvj420p"):
        samples = []
        for plane, step in zip(frame.planes, (40, 20, 20), strict=True):
            rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
            samples.append(rows[::step, ::step].ravel())
        return np.concatenate(samples).astype(np.float32)
    return np.asarray(frame.reformat(width=32, height=18, format="rgb24", interpolation="FAST_BILINEAR").to_ndarray(),
                      dtype=np.float32).ravel()


def _rgb(frame) -> Image.Image:
    """The frame as an RGB picture: swscale's conversion, its buffer taken by Pillow as it is
    (PyAV's to_image copies it twice more, which was most of the sampling's own cost)."""
    rgb = frame.reformat(format="rgb24")
    plane = rgb.planes[0]
    return Image.frombuffer("RGB", (rgb.width, rgb.height), plane, "raw", "RGB", plane.line_size, 1)


def frames_sample(data, *, limit: int) -> list[tuple[float, Image.Image]]:
    """Up to `limit` frames: one at a regular interval, and those where the scene changes;
    when there are more, the sharpest cuts and then an even thinning of the rest go first."""
    with _open(data) as container:
        probe = _probe(container)
        probe.stream.thread_type = "AUTO"  # decode on every core, as the ffmpeg command line does
        interval = max(probe.duration / max(1, limit // 2), 1.0 / probe.fps)
        chosen, next_regular, previous = [], 0.0, None
        try:
            for frame in container.decode(probe.stream):
                t = float(frame.time) if frame.time is not None else (len(chosen) / probe.fps)
                tiny = _tiny(frame)
                change = float(np.abs(tiny - previous).mean()) if previous is not None else 0.0
                previous = tiny
                regular = t >= next_regular
                if regular or change >= SCENE_CHANGE:
                    chosen.append((t, change if not regular else math.inf, _rgb(frame)))
                    if regular:
                        next_regular = t + interval
                if len(chosen) > 2 * limit:  # bound memory: keep the best half so far
                    chosen = _thin(chosen, limit)
        except MemoryError:  # FFmpeg's ENOMEM too (av.error.MemoryError): the limits say why
            raise
        except av.error.BlockingIOError as exc:
            # EAGAIN: a decoding thread could not start, its stack not fitting the limited
            # child's address space (TSREVIEW_DECODE_MEMORY_BYTES; a 4K video at 500 MB on
            # Python 3.13, where 3.11 runs out in a frame buffer first). A limit, not a corrupt
            # file: raised as MemoryError, which intake.decode names.
            raise MemoryError(f"a decoding thread could not start: {exc}") from exc
        except (av.FFmpegError, ValueError, OSError, EOFError):
            if not chosen:
                raise MediaRejected(400, "no frame of the video decodes (truncated or corrupt)") from None
    return [(round(t, 3), image) for t, _, image in _thin(chosen, limit)]


def _thin(chosen: list, limit: int) -> list:
    if len(chosen) <= limit:
        return chosen
    cuts = sorted((c for c in chosen if c[1] != math.inf), key=lambda c: -c[1])
    regular = [c for c in chosen if c[1] == math.inf]
    keep_cuts = cuts[: max(0, limit - len(regular))]
    if len(regular) > limit - len(keep_cuts):
        step = len(regular) / (limit - len(keep_cuts))
        regular = [regular[int(i * step)] for i in range(limit - len(keep_cuts))]
    return sorted(regular + keep_cuts, key=lambda c: c[0])


def _still(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=STILL_QUALITY)
    return out.getvalue()


def _sheet(images: list[Image.Image]) -> Image.Image:
    cells = images[:: max(1, math.ceil(len(images) / SHEET_CELLS))][:SHEET_CELLS]
    cell_w = 320
    cell_h = max(1, round(cell_w * cells[0].height / cells[0].width))
    rows = math.ceil(len(cells) / SHEET_COLUMNS)
    sheet = Image.new("L", (cell_w * min(SHEET_COLUMNS, len(cells)), cell_h * rows), 0)
    for n, image in enumerate(cells):
        tile = image.convert("L").resize((cell_w, cell_h), Image.Resampling.BILINEAR)
        sheet.paste(tile, ((n % SHEET_COLUMNS) * cell_w, (n // SHEET_COLUMNS) * cell_h))
    return sheet


def video_previews_make(data, *, limit: int) -> tuple[dict[str, bytes], list[float], list[str]]:
    """The derivatives of a video, from at most `limit` sampled frames: the contact sheet as
    the item's blurred previews (thumb and inspect levels, so the queue and the page show the sheet), each sampled frame as blurred
    greyscale inspect views ("frame-NN-inspect-<level>") and as a still at natural size
    ("frame-NN-still", for a reveal: never the video itself); the frames' times; and the
    PDQ of each sampled frame (tsreview's stand-in for vPDQ: a scanner's vpdq match is shown
    as the scanner reported it, and these let near-duplicate videos be found by their frames)."""
    return frames_derivatives(frames_sample(data, limit=limit))


def frames_derivatives(sampled: list[tuple[float, Image.Image]]) -> tuple[dict[str, bytes], list[float], list[str]]:
    """video_previews_make's derivatives from sampled (time, frame) pairs, of a video or of an
    animated picture (intake.animation)."""
    images = [image for _, image in sampled]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # Pillow and PDQ let go of the GIL
        small = list(pool.map(_small, images))  # one cheap reduction; every derivative but the still is smaller
        sheet = pool.submit(lambda: blurred_set(_sheet([image.convert("L") for image in small])))
        made = list(pool.map(_frame_derivatives, range(len(images)), images, small))
    previews = sheet.result()
    for views in made:
        previews.update(views[0])
    return previews, [t for t, _ in sampled], [pdq for _, pdq in made]


def _frame_derivatives(n: int, image: Image.Image, reduced: Image.Image) -> tuple[dict[str, bytes], str]:
    """One sampled frame's blurred greyscale views, its still at natural size, and its PDQ."""
    views = blurred_set(reduced.convert("L"), prefix=f"frame-{n:02d}-", thumb=False)
    views[f"frame-{n:02d}-still"] = _still(image)
    return views, pdq_hash(reduced)[0]


def _small(image: Image.Image) -> Image.Image:
    """The frame reduced by a whole factor to about PDQ_SIDE (512) on its long side: enough for
    PDQ (its reference tools hash no more) and for the 400 px blurred views and sheet tiles."""
    factor = max(1, max(image.size) // PDQ_SIDE)
    return (image.reduce(factor) if factor > 1 else image).convert("RGB")


def segment_make(data, *, start: float, seconds: float, grey: bool, sound: bool = False) -> bytes:
    """A short clip for a deliberate "play": from `start`, at most `seconds` long, reduced to
    SEGMENT_SIDE pixels on its long side, greyscale when asked; VP9 in WebM, which Chromium
    plays. Without sound unless `sound` (a second deliberate act): only then is the file's
    audio for that stretch copied in, as Opus."""
    out = io.BytesIO()
    with _open(data) as container:
        probe = _probe(container)
        audio = next((s for s in container.streams if s.type == "audio"), None) if sound else None
        scale = min(1.0, SEGMENT_SIDE / max(probe.width, probe.height))
        width, height = max(2, int(probe.width * scale) // 2 * 2), max(2, int(probe.height * scale) // 2 * 2)
        fps = min(probe.fps, SEGMENT_FPS)
        with av.open(out, mode="w", format="webm", options={"fflags": "+bitexact"}) as clip:
            rate = round(fps)
            stream = clip.add_stream("libvpx-vp9", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
            pending = _sound(container, audio, clip, start, seconds) if audio is not None else []
            if probe.stream.time_base:  # also at 0: the sound's pass may have read on
                container.seek(int(start / probe.stream.time_base), stream=probe.stream, backward=True, any_frame=False)
            written, step, next_t = 0, 1.0 / fps, start
            for frame in container.decode(probe.stream):
                t = float(frame.time) if frame.time is not None else start
                if t < start - 1e-6 or t + 1e-6 < next_t:
                    continue
                if t >= start + seconds:
                    break
                shot = frame.reformat(width=width, height=height, format="yuv420p")
                if grey:  # neutral chroma: the same picture without colour
                    for plane in shot.planes[1:]:
                        plane.update(bytes([128]) * plane.buffer_size)
                shot.pts, shot.time_base = written, Fraction(1, rate)
                while pending and pending[0][0] <= t - start:  # keep sound and picture interleaved
                    clip.mux(pending.pop(0)[1])
                for packet in stream.encode(shot):
                    clip.mux(packet)
                written, next_t = written + 1, t + step
            for packet in stream.encode():
                clip.mux(packet)
            for _, packet in pending:
                clip.mux(packet)
    if not written:
        raise MediaRejected(400, "no frame decodes from that point of the video")
    return out.getvalue()


def _sound(container, audio, clip, start: float, seconds: float) -> list:
    """The stretch's audio encoded as Opus for the clip: (time in the clip, packet) in order."""
    out = clip.add_stream("libopus", rate=48000, layout="stereo")
    resampler = av.AudioResampler(format="flt", layout="stereo", rate=48000)
    if audio.time_base:
        container.seek(int(start / audio.time_base), stream=audio, backward=True)
    packets, samples = [], 0
    for frame in container.decode(audio):
        t = float(frame.time) if frame.time is not None else start
        if t >= start + seconds:
            break
        if t + frame.samples / (frame.sample_rate or 48000) <= start:
            continue
        for piece in resampler.resample(frame):
            piece.pts, piece.time_base = samples, Fraction(1, 48000)
            samples += piece.samples
            packets += [(samples / 48000, packet) for packet in out.encode(piece)]
    packets += [(samples / 48000, packet) for packet in out.encode(None)]
    return packets
