"""Hostile videos, made here from synthetic ones (devtools.synthetic) with PyAV and by patching
a few bytes of their structure. None comes from anywhere else."""

import io
from fractions import Fraction

import av
import numpy as np

from devtools.synthetic import synthetic_video


def _boxes(data: bytes, kind: bytes) -> list[int]:
    """Offsets of every box of this type (its size field), found by its name."""
    found, at = [], data.find(kind)
    while at != -1:
        found.append(at - 4)
        at = data.find(kind, at + 1)
    return found


def small_mp4(seconds: float = 1.0, size=(64, 48)) -> bytes:
    return synthetic_video(41, seconds=seconds, size=size, fps=10)


def remux(data: bytes, *, fmt: str = "mp4", time_base: Fraction | None = None, pts=None, extradata: bytes | None = None,
          size: tuple[int, int] | None = None, repeat: int = 1) -> bytes:
    """The video's packets copied into a new container whose declarations are changed: the time
    base, each packet's time (`pts(n)`), the codec's extradata, the declared size; the packets
    `repeat` times over."""
    out = io.BytesIO()
    with av.open(io.BytesIO(data)) as source, av.open(out, "w", format=fmt) as target:
        stream = source.streams.video[0]
        copy = target.add_stream_from_template(stream)
        if size:
            copy.codec_context.width, copy.codec_context.height = size
        if extradata is not None:
            copy.codec_context.extradata = extradata
        if time_base is not None:
            copy.time_base = time_base
        packets = [p for p in source.demux(stream) if p.dts is not None]
        n = 0
        for _ in range(repeat):
            for packet in packets:
                packet.stream = copy
                if pts is not None:
                    packet.pts = packet.dts = pts(n)
                    packet.duration = max(1, pts(n + 1) - pts(n))
                    packet.time_base = time_base or copy.time_base
                target.mux(packet)
                n += 1
    return out.getvalue()


# --- A declared frame size far beyond any limit: an H.264 sequence parameter set saying so -------

class _Bits:
    def __init__(self):
        self.bits: list[int] = []

    def u(self, n: int, value: int):
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int):  # Exp-Golomb
        value += 1
        self.u(value.bit_length() - 1, 0)
        self.u(value.bit_length(), value)

    def rbsp(self) -> bytes:
        bits = self.bits + [1]
        bits += [0] * (-len(bits) % 8)
        raw = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))
        out, zeros = bytearray(), 0
        for byte in raw:  # emulation prevention
            if zeros >= 2 and byte <= 3:
                out.append(3)
                zeros = 0
            out.append(byte)
            zeros = zeros + 1 if byte == 0 else 0
        return bytes(out)


def h264_sps(width: int, height: int) -> bytes:
    """A baseline-profile SPS NAL unit declaring width × height (multiples of 16)."""
    bits = _Bits()
    bits.u(8, 66), bits.u(8, 0), bits.u(8, 52)  # profile, constraints, level 5.2
    bits.ue(0), bits.ue(0), bits.ue(2), bits.ue(1), bits.u(1, 0)  # id, frame_num, poc type, refs, gaps
    bits.ue(width // 16 - 1), bits.ue(height // 16 - 1)
    bits.u(1, 1), bits.u(1, 1), bits.u(1, 0), bits.u(1, 0)  # frame_mbs_only, direct_8x8, no crop, no VUI
    return b"\x67" + bits.rbsp()


def declared_size(width: int, height: int) -> bytes:
    """A Matroska H.264 video whose container and sequence parameter set both declare
    width × height; its packets are a small real video's."""
    source = synthetic_video(42, seconds=1, size=(64, 48), fps=10, container="matroska")
    with av.open(io.BytesIO(source)) as box:
        avcc = box.streams.video[0].codec_context.extradata
    sps = h264_sps(width, height)
    old = int.from_bytes(avcc[6:8], "big")
    avcc = avcc[:1] + sps[1:4] + avcc[4:6] + len(sps).to_bytes(2, "big") + sps + avcc[8 + old:]
    return remux(source, fmt="matroska", extradata=avcc, size=(width, height))


# --- Time -----------------------------------------------------------------------------------------

def billion_fps() -> bytes:
    """Frames one nanosecond apart (time scale 10⁹, each sample 1 tick long)."""
    return remux(small_mp4(), time_base=Fraction(1, 1_000_000_000), pts=lambda n: n)


def billion_seconds() -> bytes:
    """Ten frames, each lasting 10⁸ seconds (Matroska; the MP4 muxer will not write it)."""
    return remux(small_mp4(), fmt="matroska", time_base=Fraction(1, 1000), pts=lambda n: n * 100_000_000_000)


def tiny_frames(count: int = 100_000, fps: int = 30) -> bytes:
    """`count` frames of 16 × 16 in an MP4 (at 30 fps, 55 minutes): a key frame, then one
    encoded "nothing changed" frame written count - 1 times (a few bytes each)."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as box:
        stream = box.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        stream.options = {"preset": "ultrafast", "bf": "0"}
        picture = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 90, np.uint8), format="rgb24")
        packets = []
        for n in range(2):
            picture.pts = n
            packets += stream.encode(picture)
        packets += stream.encode()
        key, same = packets[0], packets[1]
        for n in range(count):
            packet = key if n == 0 else same
            packet.pts = packet.dts = n
            packet.duration, packet.time_base = 1, Fraction(1, fps)
            box.mux(packet)
    return out.getvalue()


# --- Structure ------------------------------------------------------------------------------------

def huge_stsz(count: int = 0x3FFF_FFFF) -> bytes:
    """The sample-size table (stsz) says it has `count` entries (4 GiB of them) in a small file."""
    data = bytearray(small_mp4())
    [at] = _boxes(bytes(data), b"stsz")
    data[at + 16:at + 20] = count.to_bytes(4, "big")  # size, "stsz", version+flags, sample_size, count
    return bytes(data)


def never_a_frame() -> bytes:
    """A well-formed MP4 whose video samples are all zero bytes: the stream yields no frame."""
    data = bytearray(small_mp4())
    [at] = _boxes(bytes(data), b"mdat")
    size = int.from_bytes(data[at:at + 4], "big")
    data[at + 8:at + size] = bytes(size - 8)
    return bytes(data)


def audio_only() -> bytes:
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as box:
        stream = box.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            box.mux(packet)
    return out.getvalue()


def truncated() -> bytes:
    data = small_mp4(seconds=2)
    return data[: len(data) // 3]


def without_moov() -> bytes:
    return small_mp4().replace(b"moov", b"zzzz")
