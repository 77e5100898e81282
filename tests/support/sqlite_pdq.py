"""Run by tests/test_clusters.py in a child process on a fresh SQLite database (the embedded
mode): the PDQ lookup finds exactly what brute force finds. Prints one line per distance."""

import os
import random

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "tsreview.settings"
django.setup()
from django.core.management import call_command

call_command("migrate", verbosity=0)
from reports.intake.clusters import hamming, pdq_neighbours
from reports.models import Item, PdqIndex

item = Item.objects.create(sha256="x"*64, md5="", sha1="", mime_type="image/jpeg", size_bytes=1, width=1, height=1, original_blob="")
rng = random.Random(1); q = "9b"*32; hashes = {}
for n in range(300):
    v = rng.getrandbits(256)
    if n < 64:
        v = int(q, 16)
        for b in rng.sample(range(256), n % 16): v ^= 1 << b
    hashes[n] = f"{v:064x}"
    PdqIndex.objects.create(item=item, frame=n, hash=hashes[n], **{f"c{i}": int(hashes[n][4*i:4*i+4], 16) for i in range(16)})
for d in (0, 4, 12, 15):
    got = {f for _, f, _ in pdq_neighbours(q, distance=d)}
    exp = {n for n, v in hashes.items() if hamming(q, v) <= d}
    print(d, got == exp, len(exp))

# The index insert (one statement, cast values) writes a picture's row once, and a video's frames.
from reports.intake.clusters import pdq_index_add  # noqa: E402

picture = Item.objects.create(sha256="p"*64, md5="", sha1="", mime_type="image/jpeg", size_bytes=1, width=1, height=1,
                              original_blob="", pdq="9b"*32)
video = Item.objects.create(sha256="v"*64, md5="", sha1="", mime_type="video/mp4", size_bytes=1, width=1, height=1,
                            original_blob="", frame_pdqs=["9b"*32, "0f"*32])
first, again = pdq_index_add(picture), pdq_index_add(picture)
rows = list(PdqIndex.objects.filter(item=picture).values_list("frame", "hash", "c0", "c15"))
print("index", first, again, rows == [(None, "9b"*32, 0x9b9b, 0x9b9b)],
      pdq_index_add(video), sorted(PdqIndex.objects.filter(item=video).values_list("frame", flat=True)) == [0, 1])
