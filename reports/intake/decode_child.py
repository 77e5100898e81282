"""The child of intake.decode: the number of frames to sample and the stored video's name as
its arguments, its derivatives pickled on stdout."""

import os
import pickle
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsreview.settings")
    from reports.intake.storage import media_store
    from reports.intake.video import video_previews_make

    with media_store().open(sys.argv[2]) as source:
        result = video_previews_make(source, limit=int(sys.argv[1]))
    sys.stdout.buffer.write(pickle.dumps(result))
