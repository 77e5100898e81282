"""How far PDQ moves under common edits of synthetic pictures: the measurements behind the
default TSREVIEW_CLUSTER_DISTANCE (docs/clusters.md). Run: `python -m devtools.pdq_distances`."""

import io
import sys

from PIL import Image

from devtools.synthetic import synthetic_image, synthetic_variant

EDITS = [("reencode", 40), ("reencode", 20), ("brightness", 0.1), ("brightness", 0.2), ("brightness", -0.2),
         ("crop", 0.005), ("crop", 0.01), ("crop", 0.02), ("resize", 0.75), ("resize", 0.5)]


def pdq(data: bytes) -> str:
    from reports.intake.media import pdq_hash

    return pdq_hash(Image.open(io.BytesIO(data)).convert("RGB"))[0]


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def measure(seeds=range(1, 61), size=(320, 240)) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for seed in seeds:
        original = synthetic_image(seed, size=size)
        base = pdq(original)
        for kind, amount in EDITS:
            found.setdefault(f"{kind} {amount:g}", []).append(distance(base, pdq(synthetic_variant(original, kind, amount=amount))))
        found.setdefault("a different picture, same size", []).append(distance(base, pdq(synthetic_image(seed + 1000, size=size))))
    return found


def main() -> None:
    found = measure()
    print("| edit | min | median | p90 | max | within 12 | within 15 |\n|---|---|---|---|---|---|---|")
    for name, values in found.items():
        v, n = sorted(values), len(values)
        print(f"| {name} | {v[0]} | {v[n // 2]} | {v[int(n * 0.9)]} | {v[-1]} | {sum(x <= 12 for x in v)}/{n} | "
              f"{sum(x <= 15 for x in v)}/{n} |")


if __name__ == "__main__":
    sys.exit(main())
