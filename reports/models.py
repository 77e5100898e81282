"""The domain: scanners push submissions of items; reviewers claim and decide; all is audited."""

import uuid
from functools import partial

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


class Role(models.TextChoices):
    """People's roles, kept as Django groups of these names."""

    REVIEWER = "reviewer"
    LEAD = "lead"
    ADMIN = "admin"


class Scanner(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # SHA-256 of the bearer token; the token itself is shown once and never stored.
    token_hash = models.CharField(max_length=64, unique=True)
    token_prefix = models.CharField(max_length=12, help_text="The token's first characters, to tell tokens apart.")
    is_active = models.BooleanField(default=True)
    callback_url = models.URLField(blank=True)
    # Standard Webhooks signing secret ("whsec_" + base64 key), shown once by `scanner_webhook`.
    # Kept readable because signing needs it; never logged. After a rotation the previous
    # secret also signs until webhook_secret_previous_until, so the receiver can switch over.
    webhook_secret = models.CharField(max_length=100, blank=True, db_default="")
    webhook_secret_previous = models.CharField(max_length=100, blank=True, db_default="")
    webhook_secret_previous_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # Lets DRF (throttling, request.user) treat an authenticated scanner as a principal.
    is_authenticated = True

    def __str__(self):
        return self.name


class ReviewQueue(models.Model):
    """A named queue ("live uploads", "datasets", "video") with its routing rule and the people
    who take from it (intake/routing.py). An item goes to the first queue, by position, whose
    rule it meets (every condition given; an empty list means any); an item no rule takes is
    in the general queue, which everyone takes from. A reviewer assigned to no queue takes from
    all of them."""

    class Media(models.TextChoices):
        ANY = "any"
        IMAGE = "image"
        VIDEO = "video"

    name = models.CharField(max_length=100, unique=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="Rules are tried in this order.")
    source_types = models.JSONField(default=list, blank=True, help_text='e.g. ["user_upload"]; empty: any source.')
    media = models.CharField(max_length=5, choices=Media.choices, default=Media.ANY)
    labels = models.JSONField(default=list, blank=True, help_text='List labels, e.g. ["A1", "A2"]; empty: any.')
    lists = models.JSONField(default=list, blank=True, help_text='List (bank) names, e.g. ["NCMEC"]; empty: any.')
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="review_queues")

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.name


class Item(models.Model):
    """One unique piece of media, keyed by the SHA-256 of its original bytes."""

    class State(models.TextChoices):
        NEW = "new"  # stored, derivatives not made yet
        QUEUED = "queued"  # waiting for a first review
        CLAIMED = "claimed"  # leased to one person
        DECIDED = "decided"
        ESCALATED = "escalated"  # a reviewer was unsure; waiting for a lead
        QA = "qa"  # waiting for a blind second review
        # A near-duplicate (PDQ within TSREVIEW_CLUSTER_DISTANCE) of a waiting item: it waits
        # with that item (its cluster's representative) and is reviewed in the same task.
        CLUSTERED = "clustered"

    class Verdict(models.TextChoices):
        NONE = ""
        CONFIRMED = "confirmed"
        NOT_CSAM = "not_csam"

    sha256 = models.CharField(max_length=64, unique=True)
    md5 = models.CharField(max_length=32)
    sha1 = models.CharField(max_length=40)
    pdq = models.CharField(max_length=64, blank=True)
    pdq_quality = models.PositiveSmallIntegerField(null=True)
    mime_type = models.CharField(max_length=40)
    size_bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    frames = models.PositiveIntegerField(default=1)
    # Moving media: its length, and the times of the frames sampled for review (DESIGN §5b).
    duration_seconds = models.FloatField(null=True, blank=True)
    frame_times = models.JSONField(default=list, blank=True)
    # PDQ of each sampled frame, in the same order (the stand-in for vPDQ; see intake/video.py).
    frame_pdqs = models.JSONField(default=list, blank=True)
    # Why no machine could make the derivatives (the item then waits for a lead instead).
    unreviewable_reason = models.CharField(max_length=400, blank=True)

    # Names in the encrypted media store; never under a served URL.
    original_blob = models.CharField(max_length=200)
    # Blurred greyscale previews by name: "thumb", and "inspect-1" .. "inspect-3" by blur level.
    previews = models.JSONField(default=dict, blank=True)

    state = models.CharField(max_length=12, choices=State.choices, default=State.NEW)
    # The PriorityPolicy's score of the item's matches and sightings (intake/routing.py).
    priority = models.SmallIntegerField(default=0)
    # A lead's urgent flag (e.g. a report escalated to high priority): ahead of everything else.
    urgent = models.BooleanField(default=False)
    queue = models.ForeignKey(ReviewQueue, null=True, blank=True, on_delete=models.SET_NULL, related_name="items")
    # The claim order in one column: the time the item counts as waiting since. Its queued_at,
    # brought forward by its priority (PriorityPolicy.seconds_per_point per point) and by
    # URGENT_AHEAD when urgent; so waiting time keeps counting and the order is one index scan.
    rank_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lease_until = models.DateTimeField(null=True, blank=True)
    # The standing verdict: the latest decision that is not an escalation.
    verdict = models.CharField(max_length=12, choices=Verdict.choices, blank=True, default="")
    # ... and its reason category when not apparent CSAM (a copy of the standing decision's, so that
    # calibration counts by reason with one GROUP BY).
    verdict_reason = models.CharField(max_length=12, blank=True, default="", db_default="")

    # Near-duplicates (review/clusters.py): the representative this item waits with (state
    # clustered), or was decided with; and the PDQ distance to it.
    cluster_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="cluster_members")
    cluster_distance = models.PositiveSmallIntegerField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    # Set when retention or a law-enforcement request destroyed the media; the row stays.
    purged_at = models.DateTimeField(null=True, blank=True)
    # One of its matches is to a quarantined list entry: its priority was lowered by
    # intake.quarantine.PENALTY (so the claim order's index still serves), to be given back on lift.
    quarantined = models.BooleanField(default=False, db_default=False)  # db_default: rows inserted by SQL (bench)

    class Meta:
        indexes = [
            # queue.item_claim: next waiting item by rank, over all queues, and in one queue.
            models.Index(fields=["state", "rank_at", "id"], name="item_claim_rank"),
            models.Index(fields=["state", "queue", "rank_at", "id"], name="item_claim_queue_rank"),
            # ... and in the general queue (no named queue): PostgreSQL does not take
            # "queue_id IS NULL" on the index above as giving rank order, so without this index
            # it walked the whole queue by rank, past every waiting item of the named queues.
            models.Index(fields=["state", "rank_at", "id"], condition=Q(queue__isnull=True), name="item_claim_general_rank"),
            # queue.leases_expire: claims whose lease ran out.
            models.Index(fields=["lease_until"], condition=Q(state="claimed"), name="item_lease_expiry"),
            # tasks.derivatives_sweep: items whose derivatives were never made.
            models.Index(fields=["created_at"], condition=Q(state="new"), name="item_new"),
            # tasks.derivatives_sweep: items restored after a purge whose previews are not back yet.
            models.Index(fields=["id"], condition=Q(previews={}, purged_at__isnull=True) & ~Q(state="new"),
                         name="item_previews_missing"),
            # review.clusters: the members waiting with a representative.
            models.Index(fields=["cluster_of"], condition=Q(state="clustered"), name="item_cluster_waiting"),
        ]

    def __str__(self):
        return f"item {self.pk}"

    @property
    def is_video(self) -> bool:
        return self.mime_type.startswith("video/")

    @property
    def is_moving(self) -> bool:
        """Moving media (DESIGN §5b): a video, or an animated GIF, WebP or PNG; reviewed frame
        first, by sampled frames. Only a video has segments to play."""
        return self.is_video or self.frames > 1


class Submission(models.Model):
    """One push from one scanner: a sighting of an item, with matches and provenance."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scanner = models.ForeignKey(Scanner, on_delete=models.PROTECT, related_name="submissions")
    external_id = models.CharField(max_length=200)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="submissions")
    duplicate = models.BooleanField(default=False, help_text="The item existed before this submission.")
    observed_at = models.DateTimeField()
    source_type = models.CharField(max_length=30)
    provenance = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scanner", "external_id"], name="submission_once_per_scanner"),
        ]

    def __str__(self):
        return f"submission {self.external_id}"


class Match(models.Model):
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="matches")
    hash_type = models.CharField(max_length=40)
    hash_value = models.CharField(max_length=512)
    list_name = models.CharField(max_length=100)
    list_entry_id = models.CharField(max_length=200, blank=True)
    distance = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    label = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # intake.quarantine: the items matched by one list entry; feedback exports by list.
            models.Index(fields=["list_name", "list_entry_id"], name="match_list_entry"),
        ]

    def short_label(self):
        """What a reviewer reads before any reveal: "NCMEC list · PDQ distance 4 · A1"."""
        parts = [f"{self.list_name} list", self.hash_type.upper()]
        if self.distance is not None:
            parts[-1] += f" distance {self.distance:g}"
        if self.label:
            parts.append(self.label)
        return " · ".join(parts)


class Claim(models.Model):
    """A lease of one item to one person; its history is the queue's history."""

    class Stage(models.TextChoices):
        REVIEW = "review"
        QA = "qa"
        LEAD = "lead"

    class End(models.TextChoices):
        OPEN = ""
        DECIDED = "decided"
        SKIPPED = "skipped"
        EXPIRED = "expired"
        RELEASED = "released"

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="claims")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="claims")
    stage = models.CharField(max_length=8, choices=Stage.choices, default=Stage.REVIEW)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end = models.CharField(max_length=10, choices=End.choices, blank=True, default="")

    class Meta:
        constraints = [
            # Two people never hold the same item.
            models.UniqueConstraint(fields=["item"], condition=Q(end=""), name="one_open_claim_per_item"),
        ]
        indexes = [models.Index(fields=["user", "end"], name="claim_user_open")]


class ViewEvent(models.Model):
    """A reveal: the original bytes were sent to this person's browser."""

    class Mode(models.TextChoices):
        HOLD = "hold"
        CLICK = "click"

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="views")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="views")
    claim = models.ForeignKey(Claim, null=True, blank=True, on_delete=models.PROTECT, related_name="views")
    mode = models.CharField(max_length=8, choices=Mode.choices)
    started_at = models.DateTimeField()
    # Unblurred time as the browser measured it (from the first painted frame), clamped by the
    # server; recorded once.
    seconds = models.FloatField(default=0)
    reported = models.BooleanField(default=False)
    # A painted view (DESIGN §5): the page reported the original decoded and on screen for at
    # least TSREVIEW_MIN_VIEW_SECONDS. Only such a view lets a reviewer confirm the file and
    # makes fileViewedByEsp true.
    painted = models.BooleanField(default=False)
    # What the browser was sent: the original bytes, or a greyscale rendering the policy asked for.
    rendering = models.CharField(max_length=10, default="original")
    # For a video: which sampled frame's still was revealed (never the video itself), or where a
    # played segment (a reduced, silent clip) started.
    frame = models.PositiveSmallIntegerField(null=True, blank=True)
    segment = models.BooleanField(default=False)
    # A segment played with its sound: a third deliberate act, metered apart (ExposureDay.audio_seconds).
    sound = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["item", "user"], name="view_item_user")]  # review.reveal.viewed_by


class Decision(models.Model):
    """An immutable verdict. An overturn is a new decision that supersedes an earlier one."""

    class Verdict(models.TextChoices):
        CONFIRMED = "confirmed"
        NOT_CSAM = "not_csam", "not apparent CSAM"
        ESCALATED = "escalated"

    class Reason(models.TextChoices):
        NONE = ""
        ADULT = "adult"
        BENIGN = "benign"
        NOT_A_MATCH = "not_a_match", "Not a match"
        UNREADABLE = "unreadable"

    class Classification(models.TextChoices):
        # The industry classification scheme used in CyberTipline reports.
        NONE = ""
        A1 = "A1", "A1 — prepubescent, sex act"
        A2 = "A2", "A2 — prepubescent, lascivious exhibition"
        B1 = "B1", "B1 — pubescent, sex act"
        B2 = "B2", "B2 — pubescent, lascivious exhibition"

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="decisions")
    # Indexed with the item (decision_reviewer_item), not alone (migration 0015).
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions",
                                 db_index=False)
    reviewer_name = models.CharField(max_length=150)
    claim = models.ForeignKey(Claim, null=True, blank=True, on_delete=models.PROTECT, related_name="decisions")
    stage = models.CharField(max_length=8, choices=Claim.Stage.choices, default=Claim.Stage.REVIEW)
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    reason = models.CharField(max_length=12, choices=Reason.choices, blank=True, default="")
    classification = models.CharField(max_length=2, choices=Classification.choices, blank=True, default="")
    annotations = models.JSONField(default=list, blank=True)
    note = models.TextField(blank=True)
    # Derived from ViewEvents when the decision is recorded, never from a form field.
    viewed_unblurred = models.BooleanField(default=False)
    # For a video: which sampled frames this person looked at (painted views), for the report.
    viewed_frames = models.JSONField(default=list, blank=True)
    # ... and which segments they played: [[from, to], ...] in seconds of the video.
    played_segments = models.JSONField(default=list, blank=True)
    supersedes = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by")
    # A member's decision made by a cluster decision: the representative's decision it follows.
    cluster_decision = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                         related_name="member_decisions")
    started_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["item", "decided_at"], name="decision_item_time"),
            # A reviewer's decisions; and queue.candidate_statement's blind QA: has this reviewer
            # decided this item? One probe, whatever the planner's statistics say.
            models.Index(fields=["reviewer", "item"], name="decision_reviewer_item"),
        ]


class PdqIndex(models.Model):
    """Multi-index hashing over PDQ (review/clusters.py): each 256-bit hash split into 16 chunks
    of 16 bits, each chunk its own indexed column. Two hashes within Hamming distance 15 agree
    exactly on at least one chunk (pigeonhole), so a lookup asks the 16 indexes for exact chunk
    matches and computes the true distance on those candidates only. One row per image, one
    per sampled frame of a video (`frame`)."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="pdq_rows")
    frame = models.PositiveSmallIntegerField(null=True, blank=True)
    hash = models.CharField(max_length=64)
    c0 = models.IntegerField()
    c1 = models.IntegerField()
    c2 = models.IntegerField()
    c3 = models.IntegerField()
    c4 = models.IntegerField()
    c5 = models.IntegerField()
    c6 = models.IntegerField()
    c7 = models.IntegerField()
    c8 = models.IntegerField()
    c9 = models.IntegerField()
    c10 = models.IntegerField()
    c11 = models.IntegerField()
    c12 = models.IntegerField()
    c13 = models.IntegerField()
    c14 = models.IntegerField()
    c15 = models.IntegerField()

    class Meta:
        # (chunk, id): a lookup counts each row's exact chunk matches from the indexes alone
        # (index-only scans), and reads the rows of the few that can be within the distance.
        indexes = [models.Index(fields=[f"c{i}", "id"], name=f"pdq_chunk_{i}") for i in range(16)]


# The policy's documented defaults (docs/priority.md); partials so that migrations copy the values.
DEFAULT_LABEL_POINTS = partial(dict, {"A1": 400, "A2": 300, "B1": 200, "B2": 100})
DEFAULT_SOURCE_POINTS = partial(dict, {"user_upload_with_uploader": 300, "user_upload": 200, "storage_scan": 150,
                                       "model_output": 100, "web_crawl": 50, "third_party_dataset": 0,
                                       "ai_training_data": 0, "other": 0})


class PriorityPolicy(models.Model):
    """How the queue is ordered (a single row, admin-editable; docs/priority.md). An item's
    priority is the sum of its best label's, best source's and best list's points and of its
    closest match's distance points; each point counts as `seconds_per_point` of waiting; an
    urgent item goes ahead of all others."""

    label_points = models.JSONField(default=DEFAULT_LABEL_POINTS, blank=True, help_text="Points by the list's label (A1 above B2).")
    source_points = models.JSONField(default=DEFAULT_SOURCE_POINTS, blank=True,
                                     help_text='Points by source type; "user_upload_with_uploader" is a live upload '
                                               "whose uploader is known.")
    list_points = models.JSONField(default=dict, blank=True, help_text='Points by list name, e.g. {"NCMEC": 50}.')
    distance_points = models.PositiveSmallIntegerField(
        default=100, help_text="Points for a match at distance 0, falling to none at the scanner's threshold.")
    seconds_per_point = models.PositiveIntegerField(default=60, help_text="How much waiting one point is worth.")

    class Meta:
        verbose_name_plural = "priority policy"

    @classmethod
    def current(cls):
        return cls.objects.get_or_create(pk=1)[0]


class TargetBreach(models.Model):
    """An item past a time target (leads/targets.py), recorded once so leads are told once."""

    class Kind(models.TextChoices):
        FIRST_REVIEW = "first_review", "time to first review"
        REPORT = "report", "confirmation to a finished report"

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="target_breaches")
    kind = models.CharField(max_length=14, choices=Kind.choices)
    tier = models.CharField(max_length=40)
    target_seconds = models.PositiveIntegerField()
    at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "kind"], name="breach_once_per_item_kind")]


class ReviewerSettings(models.Model):
    """A reviewer's own choices, kept within the WellnessPolicy."""

    class RevealMode(models.TextChoices):
        HOLD = "hold", "press and hold"
        CLICK = "click", "click, re-blur after a few seconds"

    class Blur(models.IntegerChoices):
        LIGHT = 1, "light"
        MEDIUM = 2, "medium"
        STRONG = 3, "strong"

    class Size(models.TextChoices):
        SMALL = "small"
        MEDIUM = "medium"
        LARGE = "large"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_settings")
    blur = models.PositiveSmallIntegerField(choices=Blur.choices, default=Blur.STRONG)
    greyscale = models.BooleanField(default=True)
    reveal_mode = models.CharField(max_length=6, choices=RevealMode.choices, default=RevealMode.HOLD)
    reveal_seconds = models.PositiveSmallIntegerField(default=4)
    size = models.CharField(max_length=6, choices=Size.choices, default=Size.MEDIUM)


class WellnessPolicy(models.Model):
    """The limits an admin sets for everyone (a single row)."""

    min_blur = models.PositiveSmallIntegerField(choices=ReviewerSettings.Blur.choices, default=ReviewerSettings.Blur.MEDIUM)
    allow_colour = models.BooleanField(default=True, help_text="May reviewers turn greyscale off for revealed originals?")
    max_reveal_seconds = models.PositiveSmallIntegerField(default=10)
    max_size = models.CharField(max_length=6, choices=ReviewerSettings.Size.choices, default=ReviewerSettings.Size.LARGE)
    daily_cap_seconds = models.PositiveIntegerField(default=15 * 60, help_text="Unblurred seconds per reviewer per day.")
    daily_cap_items = models.PositiveIntegerField(default=400)
    break_after_minutes = models.PositiveSmallIntegerField(default=50)
    max_reveal_clamp_seconds = models.PositiveSmallIntegerField(default=60, help_text="Longest single reveal the server counts.")

    class Meta:
        verbose_name_plural = "wellness policy"

    @classmethod
    def current(cls):
        return cls.objects.get_or_create(pk=1)[0]


class FeedbackPolicy(models.Model):
    """What an admin sets for calibration and quarantine of list entries (a single row)."""

    target_precision = models.FloatField(default=0.95, validators=[MinValueValidator(0.01), MaxValueValidator(1.0)], help_text="Calibration suggests a threshold where the share of "
                                         "matches confirmed falls under this (0 to 1).")
    entry_min_decisions = models.PositiveIntegerField(default=5, validators=[MinValueValidator(1)], help_text="A list entry gets its own calibration row "
                                                      "from this many decided matches.")
    quarantine_after = models.PositiveIntegerField(default=3, validators=[MinValueValidator(1)], help_text="Quarantine a list entry after this many not "
                                                   "apparent CSAM verdicts with no confirmation.")

    class Meta:
        verbose_name_plural = "feedback policy"

    @classmethod
    def current(cls):
        return cls.objects.get_or_create(pk=1)[0]


class ExposureDay(models.Model):
    """One reviewer's exposure on one day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exposure_days")
    day = models.DateField()
    unblurred_seconds = models.FloatField(default=0)
    audio_seconds = models.FloatField(default=0)  # seconds of sound heard (segments played with sound)
    reveals = models.PositiveIntegerField(default=0)
    items = models.PositiveIntegerField(default=0)
    active_seconds = models.PositiveIntegerField(default=0)
    last_active_at = models.DateTimeField(null=True, blank=True)
    # Active review since the last break, for the break prompt.
    active_since_break_seconds = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="exposure_once_per_day")]


class AuditEvent(models.Model):
    """Append-only log of every state change and media access (reports/audit.py).

    Writers only insert (the id comes from the table's sequence, so they never queue on one
    row); the chaining step links each id in order in AuditLink. A number whose transaction
    rolled back is filled by the chainer with an `audit.gap` event, so that ids run 1, 2, 3 …"""

    at = models.DateTimeField()
    actor_kind = models.CharField(max_length=10)  # user, scanner, system
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=60)
    subject_kind = models.CharField(max_length=30, blank=True)
    subject_id = models.CharField(max_length=64, blank=True)
    # A plain number, not a foreign key: the log outlives purged items.
    item_id = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    # For subjects that verify_audit cross-checks (decisions, reveals): the fields and SHA-256 of
    # the subject's row as it stood when the event was written.
    subject_row = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["item_id", "id"], name="audit_item"),  # the item timeline
            models.Index(fields=["action", "at"], name="audit_action_time"),
            models.Index(fields=["subject_kind", "subject_id"], name="audit_subject"),
        ]


class AuditLink(models.Model):
    """One link of the chain: HMAC-SHA256, under the audit key named by key_id (kept outside the
    database), of the previous link's mac and event `seq`. Append-only, like the events."""

    seq = models.BigIntegerField(primary_key=True)  # the event's id
    key_id = models.CharField(max_length=32)
    mac = models.CharField(max_length=64)
    linked_at = models.DateTimeField()


# --- CyberTipline reports (DESIGN §4, §7) -----------------------------------------------------

class Report(models.Model):
    """A CyberTipline report: confirmed sightings with their provenance, and how far it got.

    draft → approved (sending) → finished; a permanent failure retracts it (failed), and a lead
    may reopen it as a draft. Transient failures that outlast the retries leave it stalled."""

    class State(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved", "approved, sending"
        STALLED = "stalled", "stalled, needs a retry"
        FINISHED = "finished"
        FAILED = "failed"

    class IncidentType(models.TextChoices):
        # The schema's incidentType enumeration, verbatim.
        CHILD_PORNOGRAPHY = "Child Pornography (possession, manufacture, and distribution)", "Child Pornography (possession, manufacture, and distribution)"
        SEX_TRAFFICKING = "Child Sex Trafficking", "Child Sex Trafficking"
        SEX_TOURISM = "Child Sex Tourism", "Child Sex Tourism"
        MOLESTATION = "Child Sexual Molestation", "Child Sexual Molestation"
        MISLEADING_DOMAIN = "Misleading Domain Name", "Misleading Domain Name"
        MISLEADING_WORDS = "Misleading Words or Digital Images on the Internet", "Misleading Words or Digital Images on the Internet"
        ENTICEMENT = "Online Enticement of Children for Sexual Acts", "Online Enticement of Children for Sexual Acts"
        OBSCENE_TO_CHILD = "Unsolicited Obscene Material Sent to a Child", "Unsolicited Obscene Material Sent to a Child"

    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    # What the drafting grouped by (one uploader, one page, one dataset), and its readable name.
    group_key = models.CharField(max_length=300, blank=True)
    group_label = models.CharField(max_length=300, blank=True)
    class Annotation(models.TextChoices):
        # The schema's reportAnnotations, verbatim.
        SEXTORTION = "sextortion", "sextortion"
        CSAM_SOLICITATION = "csamSolicitation", "solicitation of child sexual abuse material"
        MINOR_TO_MINOR = "minorToMinorInteraction", "interaction between minors"
        SPAM = "spam", "spam"
        SADISTIC = "sadisticOnlineExploitation", "sadistic online exploitation"

    incident_type = models.CharField(max_length=80, choices=IncidentType.choices, default=IncidentType.CHILD_PORNOGRAPHY)
    # The incident fields as approved (a snapshot written at approval). A draft derives them from
    # its files' current provenance every time it is shown, checked or approved
    # (cybertip.statements); a lead's own edits are kept apart, in `overrides`.
    incident_at = models.DateTimeField(null=True, blank=True)
    incident_at_description = models.TextField(blank=True)
    platform = models.CharField(max_length=256, blank=True)
    additional_info = models.TextField(blank=True)
    # A lead's explicit edits of the derived fields: {"platform": "...", "incident_at": ISO, ...}.
    overrides = models.JSONField(default=dict, blank=True)
    # A lead's choices for the schema's newer fields.
    annotations = models.JSONField(default=list, blank=True)  # reportAnnotations
    urgent_reason = models.TextField(blank=True, help_text="escalateToHighPriority: immediate risk to a child, and why.")
    batched = models.BooleanField(default=False, help_text="batchedReport reason=VIRAL_POTENTIAL_MEME.")
    # Where it was approved to go: test or production (or another configured base URL), the base
    # URL and which credentials (the setting they came from and the user name, never the password).
    cybertip_target = models.CharField(max_length=12, blank=True)
    cybertip_base_url = models.CharField(max_length=500, blank=True)
    cybertip_credentials = models.CharField(max_length=300, blank=True)
    # The hidden window (DESIGN §7): set and committed just before each /submit. While it is set
    # and no NCMEC id is saved, a report may exist at NCMEC unfinished (NCMEC deletes it in 24 h).
    submit_intent_at = models.DateTimeField(null=True, blank=True)
    # An earlier /submit whose answer was lost: it may have left an unfinished report at NCMEC.
    orphan_submit_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    # Set at approval: False when a lead attested that a required field is not available.
    fully_actionable = models.BooleanField(null=True)
    # The validated document the lead approved; /submit sends exactly this.
    report_xml = models.TextField(blank=True)
    # Unique per target: NCMEC's test and production services number their reports apart.
    ncmec_report_id = models.BigIntegerField(null=True, blank=True)
    # A lease on sending, so that two workers never run the steps of one report at once.
    send_lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Set (by the lease's holder) just before /submit goes out and cleared when its answer is
    # known: a later run that finds it set without a NCMEC id does not submit a second time.
    submit_started_at = models.DateTimeField(null=True, blank=True)
    failure = models.TextField(blank=True, help_text="Why sending failed or stalled, for the lead.")
    finished_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    retracted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # report_views.report_list: reports by state, newest first.
            models.Index(fields=["state", "-created_at"], name="report_state_time"),
            # reporting.report_draft_build: an open draft for a group.
            models.Index(fields=["group_key"], condition=Q(state="draft"), name="report_draft_group"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["cybertip_target", "ncmec_report_id"], name="ncmec_report_id_per_target"),
        ]

    @property
    def urgent(self) -> bool:
        return bool(self.urgent_reason.strip())

    @property
    def may_exist_unfinished(self) -> bool:
        """Sent to /submit, no report id saved: NCMEC may hold an unfinished report of it."""
        return self.submit_intent_at is not None and self.ncmec_report_id is None and self.state != self.State.DRAFT

    def __str__(self):
        return f"report {self.pk}"


class ReportFile(models.Model):
    """One sighting (submission) of a confirmed item in a report; reported once."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="files")
    submission = models.OneToOneField(Submission, on_delete=models.PROTECT, related_name="report_file")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="report_files")
    added_at = models.DateTimeField(auto_now_add=True)
    # fileDetails as approved; reportId and fileId are filled in when it is sent.
    details_xml = models.TextField(blank=True)
    ncmec_file_id = models.CharField(max_length=100, blank=True)
    uploaded_at = models.DateTimeField(null=True, blank=True)
    fileinfo_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]


class Attestation(models.Model):
    """A lead's statement that a required provenance field is not available, and why."""

    report_file = models.ForeignKey(ReportFile, on_delete=models.PROTECT, related_name="attestations")
    field = models.CharField(max_length=200)
    reason = models.TextField()
    attested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    attested_by_name = models.CharField(max_length=150)
    at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report_file", "field"], name="attest_field_once")]


class ApiCall(models.Model):
    """One request to the CyberTipline and its response: the report's call log."""

    report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.PROTECT, related_name="calls")
    report_file = models.ForeignKey(ReportFile, null=True, blank=True, on_delete=models.PROTECT, related_name="calls")
    step = models.CharField(max_length=12)
    method = models.CharField(max_length=6)
    url = models.CharField(max_length=500)
    # Never the media bytes or the credentials: an upload is described, not copied.
    request_body = models.TextField(blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    request_id = models.CharField(max_length=200, blank=True)
    response_code = models.IntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["id"]


class ViewTask(models.Model):
    """A lead's request that a reviewer look at a draft report's files that nobody viewed (e.g.
    near-duplicates decided with their cluster): the reviewer reveals them one by one and
    confirms each file they saw, which makes its fileViewedByEsp true (reporting/view_tasks.py)."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="view_tasks")
    items = models.JSONField(default=list)  # item ids, in the order shown
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    claimed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                                   related_name="view_tasks")
    claimed_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    confirmed = models.JSONField(default=list, blank=True)  # item ids the reviewer viewed and confirmed

    class Meta:
        indexes = [models.Index(fields=["created_at"], condition=Q(done_at__isnull=True), name="viewtask_open")]


class Hold(models.Model):
    """Preservation: an item's media and context are kept until `until` (unless released)."""

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="holds")
    report = models.ForeignKey(Report, null=True, blank=True, on_delete=models.PROTECT, related_name="holds")
    until = models.DateTimeField()
    reason = models.TextField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.TextField(blank=True)

    class Meta:
        indexes = [
            # reporting.retention_purge: is an item under an active hold?
            models.Index(fields=["item", "until"], condition=Q(released_at__isnull=True), name="hold_active"),
        ]


class ScannerEvent(models.Model):
    """The outbox: one state change a scanner cares about, written in the transaction that made
    it, delivered at least once (signed POST to the callback URL) and readable by pull.

    Never media and never a reviewer's identity: `body` holds only what events.py puts there."""

    class Type(models.TextChoices):
        QUEUED = "submission.queued"
        CONFIRMED = "submission.confirmed"
        NOT_CONFIRMED = "submission.not_confirmed"
        REPORTED = "submission.reported"
        RETRACTED = "submission.retracted"

    # The stable id a receiver deduplicates on (webhook-id); the same on every attempt.
    event_id = models.CharField(max_length=40, unique=True)
    scanner = models.ForeignKey(Scanner, on_delete=models.PROTECT, related_name="events")
    submission = models.ForeignKey(Submission, on_delete=models.PROTECT, related_name="events")
    type = models.CharField(max_length=40, choices=Type.choices)
    # The exact bytes that are signed and sent, on every attempt and in the pull API.
    body = models.TextField()
    created_at = models.DateTimeField()
    # Retries stop this long after this time (creation, or a lead's replay).
    retry_since = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # Retries ran out: on the dead-letter list until a lead replays it.
    dead_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # events_pull: a scanner's events after a cursor.
            models.Index(fields=["scanner", "id"], name="event_scanner_seq"),
            # events_due: undelivered, living events by scanner.
            models.Index(fields=["scanner", "next_attempt_at"], condition=Q(delivered_at__isnull=True, dead_at__isnull=True),
                         name="event_pending"),
            # _blocked: an earlier undelivered event of the same submission keeps the order.
            models.Index(fields=["submission", "id"], condition=Q(delivered_at__isnull=True), name="event_submission_open"),
            # dead_letters: the lead's list.
            models.Index(fields=["dead_at"], condition=Q(dead_at__isnull=False), name="event_dead"),
        ]


class EntryQuarantine(models.Model):
    """A list entry that over-matches: K not apparent CSAM verdicts and no confirmation. Its
    next matches are still queued, labelled and ordered below others, until a lead lifts it."""

    list_name = models.CharField(max_length=100)
    list_entry_id = models.CharField(max_length=200)
    # Not apparent CSAM verdicts on its matches since the last lift (kept current).
    false_matches = models.PositiveIntegerField()
    quarantined_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    lift_reason = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["list_name", "list_entry_id"], condition=Q(lifted_at__isnull=True),
                                    name="one_active_quarantine_per_entry"),
        ]


class ListFeedback(models.Model):
    """A verdict told to a hash-sharing list's owner (NCMEC's hash sharing): agree on a
    confirmation, disagree with a reason on not apparent CSAM. Written with the verdict (the
    outbox pattern), sent by a task; at most once per entry, fingerprint and verdict."""

    class Vote(models.TextChoices):
        AGREE = "agree"
        DISAGREE = "disagree"

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"  # a worker holds it until lease_until; a crash leaves it for the resume sweep
        SENT = "sent"
        FAILED = "failed"  # refused for good; shown to leads

    list_name = models.CharField(max_length=100)
    esp_id = models.CharField(max_length=40)
    entry_id = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=20)  # NCMEC's fingerprint type: MD5, SHA1, PDQ, PDNA, ...
    vote = models.CharField(max_length=8, choices=Vote.choices)
    reason = models.CharField(max_length=12, blank=True)  # our reason category (disagree only)
    item_id = models.BigIntegerField()  # the item whose verdict it tells (a number: it outlives a purge)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["list_name", "esp_id", "entry_id", "fingerprint", "vote"],
                                    name="list_feedback_once_per_entry_and_verdict"),
        ]
        indexes = [
            # list_feedback.feedback_to_resume: unsent rows.
            models.Index(fields=["status", "lease_until"], condition=~Q(status="sent"), name="list_feedback_open"),
        ]


class VendorNotice(models.Model):
    """A notice to a dataset vendor (or host) that its dataset held material reported to NCMEC:
    drafted after a hold-off, sent only when a lead approves, its acknowledgement recorded.
    Holds dataset names, versions, record ids and file hashes; never media, never reviewers."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        SENT = "sent"
        ACKNOWLEDGED = "acknowledged"

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="vendor_notices")
    vendor = models.CharField(max_length=200)
    # [{"dataset", "version", "records": [{"record_id", "sha256", "md5"}]}]
    datasets = models.JSONField(default=list)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField()
    recipient = models.EmailField(blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    sent_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["report", "vendor"], name="vendor_notice_once_per_report")]
