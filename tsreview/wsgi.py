import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tsreview.settings")
application = get_wsgi_application()

# Import the URLconf, and with it every view, serializer and form, now: as each web worker boots,
# not in its first request. Left to the first request, a freshly (re)started worker spent about a
# second importing (0.3–0.4 s on an idle machine, ~1 s under load) while a scanner's push or a
# reviewer's page waited for it.
from django.urls import get_resolver  # noqa: E402

URL_PATTERNS = len(get_resolver().url_patterns)
