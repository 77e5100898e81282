"""Animated pictures (GIF, WebP, APNG) as moving media (DESIGN §5b): the same frame strip as a
video's (sampled frames at a regular interval and at scene changes, a contact sheet, one
frame's still per reveal), decoded with Pillow. Intake has already checked the picture's
pixels and frame count (intake.media); this runs in the limited child (intake.decode)."""

import math

import numpy as np
from PIL import Image, ImageSequence

from .media import MediaRejected, _open, _to_rgb
from .video import SCENE_CHANGE, _thin, frames_derivatives

# A frame that says it lasts 10 ms or less is shown for 100 ms by browsers; so is it here.
DEFAULT_FRAME_MS = 100


def _tiny(frame: Image.Image) -> np.ndarray:
    return np.asarray(frame.resize((32, 18), Image.Resampling.BILINEAR), dtype=np.float32).ravel()


def animation_frames_sample(data: bytes, *, limit: int) -> list[tuple[float, Image.Image]]:
    """Up to `limit` frames of an animated picture with their times (seconds from its start):
    one at a regular interval, and those where the scene changes (as for a video)."""
    image = _open(data)
    try:
        durations = []
        for frame in ImageSequence.Iterator(image):
            frame.load()  # WebP says a frame's duration once it is decoded
            duration = frame.info.get("duration") or 0
            durations.append(duration / 1000 if duration > 10 else DEFAULT_FRAME_MS / 1000)
        total = sum(durations)
        interval = max(total / max(1, limit // 2), 1e-3)
        chosen, next_regular, previous, t = [], 0.0, None, 0.0
        for n, frame in enumerate(ImageSequence.Iterator(image)):
            rgb = _to_rgb(frame.copy())
            tiny = _tiny(rgb)
            change = float(np.abs(tiny - previous).mean()) if previous is not None else 0.0
            previous = tiny
            # A frame is taken when it is the one on screen at the next regular time (a frame
            # shown for long is taken even when it starts just before that time).
            regular = t + durations[n] > next_regular
            if regular or change >= SCENE_CHANGE:
                chosen.append((t, change if not regular else math.inf, rgb))
                while next_regular < t + durations[n]:
                    next_regular += interval
            if len(chosen) > 2 * limit:
                chosen = _thin(chosen, limit)
            t += durations[n]
    except (OSError, SyntaxError, ValueError, EOFError):
        raise MediaRejected(400, "image data is truncated or corrupt") from None
    if not chosen:
        raise MediaRejected(400, "no frame of the picture decodes")
    return [(round(t, 3), frame) for t, _, frame in _thin(chosen, limit)]


def animation_previews_make(data: bytes, *, limit: int) -> tuple[dict[str, bytes], list[float], list[str]]:
    """The derivatives of an animated picture, as intake.video.video_previews_make makes them
    for a video: the blurred contact sheet, each sampled frame blurred and as a still at
    natural size, the frames' times and PDQs."""
    return frames_derivatives(animation_frames_sample(data, limit=limit))
