"""A small client of NCMEC's hash-sharing API (v2), for feedback on entries only.

It sends what python-threatexchange's NCMECHashAPI.submit_feedback sends (threatexchange 1.2.17,
threatexchange/exchanges/clients/ncmec/hash_api.py): PUT {base}/v2/entries/{esp}/{entry}/{type}/feedback
with a <feedbackSubmission> holding <affirmative/> or <negative><reasonIds><guid/></reasonIds></negative>,
and reads the negative reasons from GET {base}/v2/feedback/{type}/reasons. We do not depend on
threatexchange itself: it installs on Python 3.11, but brings faiss-cpu, weighted-levenshtein
(built from source), requests and numpy constraints for these two calls (docs/feedback.md).

A PUT sets this member's vote on that fingerprint of that entry: sending it again (after a crash
between sending and recording) leaves one vote, not two.
"""

import base64
import urllib.error
import urllib.request
from xml.etree import ElementTree as ET

NS = "https://hashsharing.ncmec.org/hashsharing/v2"


class HashSharingError(Exception):
    """Refused for good (bad credentials, an unknown entry, a bad request)."""

    transient = False


class Transient(HashSharingError):
    """No answer, or one that says try later (timeouts, 429, 5xx)."""

    transient = True


def _strip(root):
    for element in root.iter():
        element.tag = element.tag.rpartition("}")[2]
    return root


class HashSharingClient:
    VERSION = "v2"

    def __init__(self, *, base_url: str, username: str, password: str, timeout: float = 30.0):
        self.base_url, self.timeout = base_url.rstrip("/"), timeout
        self._auth = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def _request(self, method: str, path: str, data: bytes | None = None) -> bytes:
        request = urllib.request.Request(f"{self.base_url}/{self.VERSION}/{path}", data=data, method=method, headers={
            "Authorization": self._auth, "Content-Type": "application/xml; charset=utf-8"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read(1024 * 1024)
        except urllib.error.HTTPError as exc:
            kind = Transient if exc.code in (408, 429) or exc.code >= 500 else HashSharingError
            raise kind(f"HTTP {exc.code} from {method} {path}") from None
        except (OSError, ValueError) as exc:
            raise Transient(f"{method} {path}: {exc.__class__.__name__}: {exc}") from None

    def feedback_reasons(self, fingerprint: str) -> dict[str, str]:
        """NCMEC's negative feedback reasons for a fingerprint type: guid -> name."""
        root = _strip(ET.fromstring(self._request("GET", f"feedback/{fingerprint}/reasons")))
        return {r.findtext("guid", ""): r.findtext("name", "") for r in root.iter("reason")}

    def submit_feedback(self, *, esp_id: str, entry_id: str, fingerprint: str, agree: bool,
                        negative_reason_guid: str | None = None) -> None:
        root = ET.Element("feedbackSubmission", {"xmlns": NS})
        vote = ET.SubElement(root, "affirmative" if agree else "negative")
        if not agree:
            if not negative_reason_guid:
                raise HashSharingError("Disagreeing needs one of NCMEC's negative reasons.")
            ET.SubElement(ET.SubElement(vote, "reasonIds"), "guid").text = negative_reason_guid
        self._request("PUT", f"entries/{esp_id}/{entry_id}/{fingerprint}/feedback", ET.tostring(root))
