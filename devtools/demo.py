"""Demo data for a first look (make run): people with printed passwords, a scanner, and
synthetic items pushed through the same intake the API uses; a couple of confirmations made
through the real claim, reveal and decide path so that the report pages have something."""

import secrets
from datetime import timedelta
from hashlib import sha256

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from reports.api.auth import token_hash, token_new
from reports.feedback.webhooks import scanner_webhook_configure
from reports.intake.routing import item_urgent_set
from reports.intake.submission import submission_push
from reports.models import Claim, Decision, Item, ReviewQueue, Role, Scanner, Submission
from reports.review import decisions, queue, reveal

from .synthetic import synthetic_gif, synthetic_image, synthetic_variant, synthetic_video

# Named queues as docs/priority.md describes them; demo reviewers are in none, so they take from all.
DEMO_QUEUES = [("video", {"media": "video"}), ("live uploads", {"source_types": ["user_upload"]}),
               ("datasets", {"source_types": ["third_party_dataset", "web_crawl"]})]
CLUSTER_SEED = 900

DEMO_USERS = [("reviewer", Role.REVIEWER), ("reviewer2", Role.REVIEWER), ("lead", Role.LEAD), ("admin", Role.ADMIN)]
LISTS = [("NCMEC", "A1"), ("IWF", "A"), ("NCMEC", "B2"), ("Internal", "")]
SOURCES = ["third_party_dataset", "web_crawl", "user_upload", "storage_scan"]


def demo_metadata(n: int, sha256_hex: str) -> dict:
    now = timezone.now()
    list_name, label = LISTS[n % len(LISTS)]
    source = SOURCES[n % len(SOURCES)]
    provenance = {"source_type": source, "platform": "Example Photos", "original_filename": f"demo-{n}.jpg"}
    if source in ("third_party_dataset", "web_crawl"):
        provenance.update({
            "location_url": f"https://host.example/img/{n}.jpg",
            "page_url": f"https://host.example/gallery/{n % 3}",
            "collected_at": (now - timedelta(days=40)).isoformat(),
            "publicly_available": True,
        })
    if source == "third_party_dataset" and n % 8 != 0:  # some left incomplete on purpose
        provenance["dataset"] = {"name": "web-images-v3", "vendor": "Acme Data", "version": "2026-09",
                                 "record_id": f"shard-0042/{n}", "acquired_at": (now - timedelta(days=50)).isoformat()}
    if source in ("user_upload", "storage_scan"):
        provenance["uploader"] = {"esp_identifier": f"user-{1000 + n % 3}", "screen_name": f"demo_user_{n % 3}",
                                  "ip_events": [{"ip": "203.0.113.7", "event": "Upload",
                                                 "at": (now - timedelta(days=3)).isoformat(), "port": 443}]}
        provenance["uploaded_at"] = (now - timedelta(days=3)).isoformat()
        provenance["page_url"] = f"https://photos.example/p/{n}"  # where the upload is shown on the service
    match = {"hash_type": "pdq" if n % 2 else "sha256", "list": list_name, "list_entry_id": str(98000 + n), "label": label}
    match.update({"hash_value": sha256_hex, "distance": 0} if match["hash_type"] == "sha256"
                 else {"hash_value": secrets.token_hex(32), "distance": n % 20, "threshold": 31})
    return {"external_id": f"demo/{n}", "observed_at": (now - timedelta(hours=n)).isoformat(),
            "matches": [match], "provenance": provenance}


def people_create() -> list[tuple[str, str, str]]:
    """The demo people, each with a new password: (role, username, password)."""
    return [(role, username, _user(username, role)) for username, role in DEMO_USERS]


def _user(username, role) -> str:
    User = get_user_model()
    password = secrets.token_urlsafe(9)
    user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
    user.set_password(password)
    user.is_staff = user.is_superuser = role == Role.ADMIN
    user.save()
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return password


def scanner_create() -> tuple[Scanner, str]:
    """The demo scanner with a new token (shown once)."""
    token = token_new()
    with transaction.atomic():
        scanner, _ = Scanner.objects.update_or_create(
            name="demo-scanner", defaults={"token_hash": token_hash(token), "token_prefix": token[:8]})
    return scanner, token


def items_push(scanner: Scanner, count: int) -> tuple[int, int]:
    """Push `count` synthetic pictures, two videos and an animated GIF as the scanner would;
    returns how many were new, and how many were pushed."""
    created = 0
    for n in range(count):
        data = synthetic_image(n, size=(800 + 16 * n, 600), text=f"SYNTHETIC DEMO {n}")
        document = demo_metadata(n, sha256(data).hexdigest())
        created += submission_push(scanner=scanner, document=document, data=data, claimed_type="image/jpeg").created
    return created + moving_push(scanner, start=count), count + 3


def moving_push(scanner: Scanner, *, start: int) -> int:
    """Two synthetic videos (H.264 with sound, VP9) and an animated GIF, so that the video
    page is there on a first look."""
    media = [
        (synthetic_video(start, seconds=20, size=(640, 360), fps=15, audio=True, cuts=3), "video/mp4"),
        (synthetic_video(start + 1, seconds=10, size=(480, 270), codec="libvpx-vp9", container="webm", cuts=2), "video/webm"),
        (synthetic_gif(start + 2), "image/gif"),
    ]
    created = 0
    for n, (data, content_type) in enumerate(media, start):
        document = demo_metadata(n, sha256(data).hexdigest())
        document["provenance"]["original_filename"] = f"demo-{n}.{content_type.split('/')[1]}"
        created += submission_push(scanner=scanner, document=document, data=data, claimed_type=content_type).created
    return created


def queues_create() -> int:
    """The demo's named queues with their routing rules (before items arrive)."""
    for position, (name, rule) in enumerate(DEMO_QUEUES):
        ReviewQueue.objects.update_or_create(name=name, defaults={"position": position, **rule})
    return len(DEMO_QUEUES)


def cluster_push(scanner: Scanner) -> tuple[int, int]:
    """A near-duplicate cluster: a picture and three re-encodes of it (JPEG at quality 60, 40
    and 25), pushed as four sightings; the re-encodes wait in the picture's cluster. Returns the
    representative's id and how many members wait with it."""
    original = synthetic_image(CLUSTER_SEED, size=(640, 480), text="SYNTHETIC DEMO CLUSTER")
    copies = [original] + [synthetic_variant(original, "reencode", amount=q) for q in (60, 40, 25)]
    items = []
    for n, data in enumerate(copies):
        document = demo_metadata(CLUSTER_SEED + n, sha256(data).hexdigest())
        document["external_id"] = f"demo/cluster/{n}"
        items.append(submission_push(scanner=scanner, document=document, data=data, claimed_type="image/jpeg").submission.item_id)
    rep = Item.objects.get(pk=items[0])
    return rep.pk, Item.objects.filter(cluster_of=rep, state=Item.State.CLUSTERED).count()


def urgent_mark() -> int | None:
    """One waiting dataset item flagged urgent by the demo lead, so the order shows it first."""
    item = Item.objects.filter(state=Item.State.QUEUED, urgent=False, cluster_of__isnull=True).order_by("rank_at").last()
    if item is None:
        return None
    lead = get_user_model().objects.get(username="lead")
    item_urgent_set(item_id=item.pk, urgent=True, actor=lead, why="demo: a lead marked it urgent")
    return item.pk


def confirmations_make(*, count: int) -> int:
    """A couple of confirmations through the real path (claim, reveal, decide). An item that
    the QA sample takes is confirmed again in blind QA by the second demo reviewer."""
    if Decision.objects.exists():
        return 0
    User = get_user_model()
    first, second = User.objects.get(username="reviewer2"), User.objects.get(username="reviewer")
    done = 0
    for _ in range(count):
        claim = queue.item_claim(user=first, stages=(Claim.Stage.REVIEW,))
        if claim is None:
            break
        _confirm(first, claim)
        done += 1
    while claim := queue.item_claim(user=second, stages=(Claim.Stage.QA,)):
        _confirm(second, claim)
    return done


def _confirm(user, claim) -> None:
    # As the review page would: the original fetched, then a 2 s painted look reported.
    _, _, view = reveal.original_fetch(user=user, item=claim.item, claim=claim, mode="hold")
    reveal.view_seconds_record(view=view, seconds=2.0, painted=True)
    decisions.decision_record(user=user, claim=claim, verdict="confirmed", classification="A1")


# --- Closing the loop: the webhook receiver and decisions for the calibration page ---------------

def webhook_configure(scanner: Scanner, url: str) -> str:
    """Point the demo scanner's events at the demo receiver; returns its new signing secret."""
    return scanner_webhook_configure(actor=None, scanner=scanner, url=url, rotate=True)


# (distance, entry, verdict or reason): confirmations thin out with distance; entry 99907 is a
# bad entry (three false matches and no confirmation: it ends up quarantined).
CALIBRATION = ([(d, f"9990{d % 3}", "confirmed") for d in range(0, 8)] * 2
               + [(8, "99903", "confirmed"), (9, "99903", "benign"), (10, "99904", "confirmed"), (11, "99904", "confirmed"),
                  (12, "99905", "adult"), (13, "99905", "confirmed"), (14, "99906", "not_a_match"), (15, "99906", "confirmed")]
               + [(17, "99907", "not_a_match"), (19, "99907", "not_a_match"), (21, "99907", "benign"),
                  (18, "99908", "confirmed"), (22, "99908", "not_a_match"), (23, "99908", "unreadable")])


def calibration_seed(scanner: Scanner, *, count: int = len(CALIBRATION)) -> int:
    """Decided matches for the calibration page, made through the real path: pushed, claimed,
    (revealed,) decided by reviewer2 (a QA sample is decided the same way by reviewer)."""
    if count <= 0 or Submission.objects.filter(external_id__startswith="demo-cal/").exists():
        return 0
    User = get_user_model()
    first, second = User.objects.get(username="reviewer2"), User.objects.get(username="reviewer")
    answers = {}
    for n, (distance, entry, answer) in enumerate(CALIBRATION[:count]):
        data = synthetic_image(500 + n, size=(320, 240), text=f"CALIBRATION {n}")
        document = demo_metadata(n, sha256(data).hexdigest())
        document["external_id"] = f"demo-cal/{n}"
        document["matches"] = [{"hash_type": "pdq", "hash_value": secrets.token_hex(32), "list": "NCMEC",
                                "list_entry_id": entry, "distance": distance, "threshold": 31, "label": "A1"}]
        item_id = submission_push(scanner=scanner, document=document, data=data, claimed_type="image/jpeg").submission.item_id
        Item.objects.filter(pk=item_id).update(priority=500)  # decided now, before the demo queue
        answers[item_id] = answer
    for user, stage in ((first, Claim.Stage.REVIEW), (second, Claim.Stage.QA)):
        while (claim := queue.item_claim(user=user, stages=(stage,))) and claim.item_id in answers:
            _decide(user, claim, answers[claim.item_id])
        if claim:
            queue.claim_skip(claim=claim)
    return len(answers)


def _decide(user, claim, answer) -> None:
    if answer == "confirmed":
        _confirm(user, claim)
    else:
        decisions.decision_record(user=user, claim=claim, verdict="not_csam", reason=answer)
