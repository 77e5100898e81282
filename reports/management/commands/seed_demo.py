import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from reports.api_auth import token_hash, token_new
from reports.demo import synthetic_image
from reports.intake import submission_create
from reports.media import image_inspect
from reports.models import Decision, Role, Scanner
from reports.provenance import MetadataInput

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
    match = {"hash_type": "pdq" if n % 2 else "sha256", "list": list_name, "list_entry_id": str(98000 + n), "label": label}
    match.update({"hash_value": sha256_hex, "distance": 0} if match["hash_type"] == "sha256"
                 else {"hash_value": secrets.token_hex(32), "distance": n % 20, "threshold": 31})
    return {"external_id": f"demo/{n}", "observed_at": (now - timedelta(hours=n)).isoformat(),
            "matches": [match], "provenance": provenance}


class Command(BaseCommand):
    help = "Demo data for a first look: users with printed passwords, a scanner, synthetic items pushed through intake."

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=24)

    def handle(self, *args, items, **options):
        self.stdout.write("Demo logins (passwords are new on every run):")
        for username, role in DEMO_USERS:
            self.stdout.write(f"  {role:9} {username:10} {self._user(username, role)}")
        scanner, token = self._scanner()
        self.stdout.write(f"Demo scanner token (new on every run): {token}")
        created = 0
        for n in range(items):
            data = synthetic_image(n, size=(800 + 16 * n, 600), text=f"SYNTHETIC DEMO {n}")
            facts = image_inspect(data, claimed_type="image/jpeg")
            validator = MetadataInput(data=demo_metadata(n, facts.sha256))
            validator.is_valid(raise_exception=True)
            created += submission_create(scanner=scanner, metadata=validator.validated_data, data=data, facts=facts).created
        self.stdout.write(f"Demo items: {created} new, {items - created} already there.")
        confirmed = self._confirm_some(count=2)
        if confirmed:
            self.stdout.write(f"reviewer2 confirmed {confirmed} item(s), ready for a lead to report.")

    def _confirm_some(self, *, count):
        """A couple of confirmations through the real path (claim, reveal, decide), so that the
        report pages have something to show on a first look."""
        from django.test import override_settings

        from reports import decisions, queue, review

        if Decision.objects.exists():
            return 0
        reviewer = get_user_model().objects.get(username="reviewer2")
        done = 0
        with override_settings(TSREVIEW_QA_SAMPLE_PERCENT=0):
            for _ in range(count):
                claim = queue.item_claim(user=reviewer)
                if claim is None:
                    break
                review.original_fetch(user=reviewer, item=claim.item, claim=claim, mode="hold")
                decisions.decision_record(user=reviewer, claim=claim, verdict="confirmed", classification="A1")
                done += 1
        return done

    def _user(self, username, role):
        User = get_user_model()
        password = secrets.token_urlsafe(9)
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.org"})
        user.set_password(password)
        user.is_staff = user.is_superuser = role == Role.ADMIN
        user.save()
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        return password

    def _scanner(self):
        token = token_new()
        with transaction.atomic():
            scanner, _ = Scanner.objects.update_or_create(
                name="demo-scanner", defaults={"token_hash": token_hash(token), "token_prefix": token[:8]})
        return scanner, token
