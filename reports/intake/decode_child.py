"""The child of intake.decode: the video's bytes on stdin, the number of frames to sample as
its argument, its derivatives pickled on stdout."""

import os
import pickle
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsreview.settings")
    from reports.intake.video import video_previews_make

    result = video_previews_make(sys.stdin.buffer.read(), limit=int(sys.argv[1]))
    sys.stdout.buffer.write(pickle.dumps(result))
