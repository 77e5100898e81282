"""The audit log against the app's own credentials and an insider with database access
(issue 13, finding 1; docs/security.md): two database roles, the keyed chain, its checkpoints
outside the database, and writers that never queue on one row."""

import io
import json
import os
import subprocess
import sys
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, InternalError, ProgrammingError, connection, connections, transaction

from reports import audit
from reports.audit import audit_chain, audit_record, audit_verify
from reports.dbroles import append_only_tables, grant_runtime
from reports.models import AuditEvent, AuditLink, Decision, ViewEvent
from reports.tasks import audit_chain_task

from .factories import TEST_AUDIT_KEY, decide_next, make_item

REFUSED = (InternalError, ProgrammingError, IntegrityError)
INSIDER = pytest.mark.django_db(transaction=True, databases=["default", "owner"])
SEQ = "pg_get_serial_sequence('reports_auditevent', 'id')"


@pytest.fixture
def decided(reviewer, settings):
    """One item claimed, revealed (a ViewEvent) and confirmed (a Decision): a dozen events."""
    settings.TSREVIEW_QA_SAMPLE_PERCENT = 0
    make_item(1)
    return decide_next(reviewer)


def runtime_refuses(sql):
    """Run `sql` on the suite's own connection (the runtime role); return the refusal's text."""
    with pytest.raises(REFUSED) as refused:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    return str(refused.value)


def as_insider(*statements):
    """What someone with the owner's or a superuser's login can do: set the append-only
    triggers aside for one transaction and change anything."""
    owner = connections["owner"]
    with transaction.atomic(using="owner"), owner.cursor() as cursor:
        tables = append_only_tables("owner")
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for sql in statements:
            cursor.execute(sql)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in tables:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def broken(**kwargs):
    checked, at, why = audit_verify(**kwargs)
    assert at is not None, f"verify_audit said intact ({checked} events)"
    return at, why


# --- The runtime role -------------------------------------------------------------------------

def test_the_suite_runs_as_a_runtime_role_that_owns_nothing(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, session_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        user, session_user, superuser = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tableowner = current_user")
        owned = cursor.fetchone()[0]
    assert user == session_user == connection.settings_dict["USER"] and not superuser and owned == 0


APPEND_ONLY = {"reports_auditevent": "action", "reports_auditlink": "mac", "reports_decision": "verdict",
               "reports_viewevent": "mode"}
FORBIDDEN = [sql.format(table, column=column) for table, column in APPEND_ONLY.items() for sql in (
    "UPDATE {} SET {column} = {column}", "DELETE FROM {}", "TRUNCATE {}", "ALTER TABLE {} DISABLE TRIGGER ALL",
    "ALTER TABLE {} DISABLE TRIGGER USER")] + [
    "UPDATE reports_viewevent SET started_at = started_at - interval '1 hour'",
    "DROP TRIGGER reports_auditevent_append_only ON reports_auditevent",
    "SET session_replication_role = replica",
    f"SELECT setval({SEQ}, 1)",
    "INSERT INTO django_migrations (app, name, applied) VALUES ('reports', 'x', now())",
    "CREATE TABLE reports_sneaky (id int)",
]


def test_the_runtime_role_cannot_change_history(decided):
    """Each statement on the suite's own connection: refused for want of privilege or ownership."""
    for sql in FORBIDDEN:
        why = runtime_refuses(sql)
        assert "permission denied" in why or "must be owner" in why, (sql, why)
    assert Decision.objects.get().verdict == "confirmed" and AuditEvent.objects.filter(action="decision.recorded").exists()
    assert ViewEvent.objects.get().painted


def test_a_reveal_is_measured_once_and_nothing_else_changes(decided):
    view = ViewEvent.objects.get()
    why = runtime_refuses(f"UPDATE reports_viewevent SET seconds = 99 WHERE id = {view.pk}")  # already reported
    assert "append-only" in why
    assert ViewEvent.objects.get().seconds == view.seconds


@INSIDER
def test_behind_the_runtime_role_the_triggers_refuse_even_the_owner(decided):
    """The second line: statement-level TRUNCATE and row-level triggers hold for the owner too
    (who can set them aside, which is what the chain and its checkpoints are for)."""
    audit_verify()
    owner = connections["owner"]
    for table in ("reports_auditevent", "reports_auditlink", "reports_decision", "reports_viewevent"):
        for sql in (f"TRUNCATE {table} CASCADE", f"DELETE FROM {table}"):
            with pytest.raises(REFUSED, match="append-only"):
                with transaction.atomic(using="owner"), owner.cursor() as cursor:
                    cursor.execute(sql)
    assert Decision.objects.count() == 1 and ViewEvent.objects.count() == 1


@INSIDER
def test_grants_cover_tables_added_later(db):
    """Another branch's migration adds tables: the owner's default privileges give the runtime role
    an ordinary table at once, and a table with the append-only trigger is insert-only after the
    grant that every migration as the owner runs."""
    owner = connections["owner"]
    with owner.cursor() as cursor:
        cursor.execute("CREATE TABLE reports_later (id int primary key, note text)")
        cursor.execute("CREATE TABLE reports_later_log (id int primary key, note text)")
        cursor.execute("CREATE TRIGGER reports_later_log_append_only BEFORE UPDATE OR DELETE ON reports_later_log "
                       "FOR EACH ROW EXECUTE FUNCTION tsreview_append_only()")
    try:
        grant_runtime(runtime_role=connection.settings_dict["USER"])
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO reports_later VALUES (1, 'a'), (2, 'b')")
            cursor.execute("UPDATE reports_later SET note = 'c' WHERE id = 1")
            cursor.execute("DELETE FROM reports_later WHERE id = 2")
            cursor.execute("INSERT INTO reports_later_log VALUES (1, 'a')")
        assert "permission denied" in runtime_refuses("UPDATE reports_later_log SET note = 'b'")
        assert "permission denied" in runtime_refuses("DELETE FROM reports_later_log")
    finally:
        with owner.cursor() as cursor:
            cursor.execute("DROP TABLE reports_later, reports_later_log")


@INSIDER
def test_a_migrate_as_the_owner_grants_the_runtime_role_again(db):
    """A privilege that drifted (granted by hand) is taken back by the next `migrate --database owner`."""
    runtime = connection.settings_dict["USER"]
    with connections["owner"].cursor() as cursor:
        cursor.execute(f"GRANT UPDATE, DELETE, TRUNCATE ON reports_decision TO {runtime}")
    call_command("migrate", database="owner", verbosity=0)
    assert "permission denied" in runtime_refuses("DELETE FROM reports_decision")
    assert "permission denied" in runtime_refuses("TRUNCATE reports_decision")


@pytest.mark.django_db(databases=["default", "owner"])
def test_grant_runtime_refuses_the_owner_itself_and_revokes_changes_on_append_only_tables():
    with pytest.raises(CommandError, match="one role"):
        call_command("grant_runtime", role=connections["owner"].settings_dict["USER"])
    out = io.StringIO()
    call_command("grant_runtime", role=connection.settings_dict["USER"], stdout=out)
    assert "REVOKE UPDATE, DELETE ON \"reports_auditevent\"" in out.getvalue()


# --- Finding 1, tampering by tampering: the runtime role is refused, an insider is caught ----------

@INSIDER
def test_an_edited_event_with_its_chain_recomputed_is_caught(decided):
    audit_verify()
    target = AuditEvent.objects.get(action="decision.recorded")
    assert "permission denied" in runtime_refuses(f"UPDATE reports_auditevent SET data = '{{}}' WHERE id = {target.pk}")
    # The insider rewrites the event and every link after it, as well as they can without the
    # key (a plain SHA-256 chain, or HMAC under a key of their own).
    wrong_key = b"k" * 32
    prev = AuditLink.objects.get(seq=target.pk - 1).mac
    statements = [f"UPDATE reports_auditevent SET data = '{json.dumps({'verdict': 'not_csam'})}' WHERE id = {target.pk}"]
    for event in AuditEvent.objects.filter(id__gte=target.pk).order_by("id"):
        if event.pk == target.pk:
            event.data = {"verdict": "not_csam"}
        prev = audit.link_mac(wrong_key, prev, event)
        statements.append(f"UPDATE reports_auditlink SET mac = '{prev}' WHERE seq = {event.pk}")
    as_insider(*statements)
    assert broken() == (target.pk, "the event does not match its link (altered, or the chain rewritten)")


@INSIDER
def test_an_edited_event_relinked_by_the_chainer_is_caught_by_the_checkpoint(decided):
    """The insider removes the links from the edited event on and lets the chainer (which holds
    the key) link the rewritten tail: the checkpoint outside the database no longer matches."""
    audit_verify()  # linked, and the head checkpointed outside the database
    target = AuditEvent.objects.get(action="decision.recorded")
    as_insider(f"UPDATE reports_auditevent SET data = '{{\"verdict\": \"not_csam\"}}' WHERE id = {target.pk}",
               f"DELETE FROM reports_auditlink WHERE seq >= {target.pk}")
    with pytest.raises(audit.AuditTampered, match="behind checkpoint"):
        audit_chain_task()
    assert not AuditLink.objects.filter(seq__gte=target.pk).exists()  # the chainer linked nothing
    at, why = broken()
    assert at == target.pk and "head moved back" in why


@INSIDER
def test_the_last_events_deleted_and_the_head_moved_back_are_caught(decided, reviewer):
    with transaction.atomic():
        for n in range(60):
            audit_record(actor=None, action="test.filler", data={"n": n})
    audit_verify()  # linked, and the head checkpointed outside the database
    last = AuditEvent.objects.order_by("-id").first().pk
    cut = last - 50
    assert "permission denied" in runtime_refuses(f"DELETE FROM reports_auditevent WHERE id > {cut}")
    as_insider(f"DELETE FROM reports_auditevent WHERE id > {cut}", f"DELETE FROM reports_auditlink WHERE seq > {cut}",
               f"SELECT setval({SEQ}, {cut})")
    at, why = broken()
    assert at == cut + 1 and f"checkpointed at {last}" in why and "head moved back" in why


@INSIDER
def test_every_event_deleted_is_caught(decided):
    audit_verify()
    assert "permission denied" in runtime_refuses("DELETE FROM reports_auditevent")
    assert "permission denied" in runtime_refuses("TRUNCATE reports_auditevent, reports_auditlink")
    as_insider("DELETE FROM reports_auditevent", "DELETE FROM reports_auditlink", f"SELECT setval({SEQ}, 1, false)")
    assert broken() == (0, "the log is empty: no events at all (a deleted log looks like this)")
    make_item(9)  # the app carries on writing: a log that starts again is behind its checkpoint
    at, why = broken()
    assert "head moved back" in why


@INSIDER
@pytest.mark.parametrize("table, change", [
    ("reports_decision", "verdict = 'not_csam', reason = 'benign', classification = ''"),
    ("reports_decision", "note = 'nothing to see'"),  # a field the event's data does not name
    ("reports_viewevent", "painted = false, seconds = 0.1"),
])
def test_a_rewritten_decision_or_reveal_is_caught(decided, table, change):
    audit_verify()
    assert "permission denied" in runtime_refuses(f"UPDATE {table} SET {change}") or table == "reports_viewevent"
    as_insider(f"UPDATE {table} SET {change}")
    kind = table.removeprefix("reports_")
    at, why = broken()
    assert why.startswith(kind) and "no longer matches its audit event (rewritten)" in why
    assert AuditEvent.objects.get(pk=at).subject_kind == kind


@INSIDER
def test_a_decision_inserted_behind_the_apps_back_is_caught(decided):
    as_insider("INSERT INTO reports_decision (item_id, reviewer_id, reviewer_name, stage, verdict, reason, "
               "classification, annotations, note, viewed_unblurred, viewed_frames, played_segments, decided_at) "
               "SELECT item_id, reviewer_id, reviewer_name, stage, 'not_csam', 'benign', '', '[]', '', false, '[]', "
               "'[]', now() FROM reports_decision")
    at, why = broken()
    assert "has no audit event" in why


@INSIDER
def test_a_deleted_event_in_the_middle_is_caught(decided):
    audit_verify()
    middle = AuditEvent.objects.order_by("id")[3]
    as_insider(f"DELETE FROM reports_auditevent WHERE id = {middle.pk}")
    assert broken() == (middle.pk, "missing event (numbers are never skipped: a rolled-back one is a gap event)")


# --- The chain: keyed, gap-aware, anchored, bounded ----------------------------------------------

def test_a_rolled_back_number_becomes_a_gap_event_and_the_chain_stays_intact(decided):
    with pytest.raises(ZeroDivisionError):
        with transaction.atomic():
            audit_record(actor=None, action="test.rolled_back")
            raise ZeroDivisionError
    with transaction.atomic():
        audit_record(actor=None, action="test.kept")
    checked, at, why = audit_verify()
    assert at is None, why
    ids = list(AuditEvent.objects.order_by("id").values_list("id", flat=True))
    assert ids == list(range(1, len(ids) + 1)) and checked == len(ids)
    gap = AuditEvent.objects.get(action=audit.GAP)
    assert AuditEvent.objects.get(action="test.kept").pk == gap.pk + 1
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()


def test_links_are_keyed_and_an_old_key_still_verifies_after_rotation(decided, settings, audit_anchor):
    audit_verify()
    assert set(AuditLink.objects.values_list("key_id", flat=True)) == {"test1"}
    settings.TSREVIEW_AUDIT_KEY = "test2:" + "bmV3a2V5bmV3a2V5bmV3a2V5bmV3a2V5bmV3a2V5bmU="
    settings.TSREVIEW_AUDIT_OLD_KEYS = TEST_AUDIT_KEY
    make_item(2)
    checked, at, why = audit_verify()
    assert at is None, why
    assert set(AuditLink.objects.values_list("key_id", flat=True)) == {"test1", "test2"}
    settings.TSREVIEW_AUDIT_OLD_KEYS = ""  # the old key lost: what it signed no longer verifies
    assert broken(chain=False)[1] == "a checkpoint's signature does not verify (forged, or its key is gone)"
    audit_anchor.unlink()
    assert broken(chain=False) == (1, "linked under key 'test1', which is not configured")


def test_an_event_left_unlinked_past_the_window_fails_verification(decided, settings):
    audit_verify()
    with transaction.atomic():
        audit_record(actor=None, action="test.late")
    assert audit_verify(chain=False)[1] is None  # within the window: waiting to be linked
    settings.TSREVIEW_AUDIT_CHAIN_WINDOW_SECONDS = -1
    late = AuditEvent.objects.get(action="test.late").pk
    assert broken(chain=False) == (late, "not linked within the chaining window: the chain stalled, or its links were removed")


def test_checkpoints_are_signed_and_a_forged_one_fails(decided, audit_anchor):
    audit_verify()
    record = json.loads(audit_anchor.read_text().splitlines()[-1])
    assert record["seq"] == AuditLink.objects.order_by("-seq").first().seq and record["key_id"] == "test1"
    forged = {**record, "seq": record["seq"] + 1000}
    with open(audit_anchor, "a") as fh:
        fh.write(json.dumps(forged) + "\n")
    assert broken(chain=False) == (record["seq"] + 1000, "a checkpoint's signature does not verify (forged, or its key is gone)")


def test_verify_audit_command_and_the_beat_task(decided, settings):
    assert "audit-chain" in settings.CELERY_BEAT_SCHEDULE
    assert audit_chain_task() == AuditEvent.objects.count()
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert f"intact: {AuditEvent.objects.count()} events" in out.getvalue()


def test_leads_see_the_latest_checkpoint(decided, lena, rita):
    audit_verify()
    record = audit.checkpoint_store().latest()
    page = lena.get("/lead/audit/")
    assert page.status_code == 200
    text = page.content.decode()
    assert f"#{record['seq']}" in text and record["mac"][:16] in text and "signature verifies" in text
    assert rita.get("/lead/audit/").status_code == 404


# --- No global lock ------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_writers_do_not_wait_for_each_other_and_the_chainer_waits_for_the_slow_one(reviewer):
    """One transaction writes an event and stays open; another writes and commits without
    waiting (the old design queued it on the head row). The chainer links nothing past the open
    one's number until it commits, then links both in order."""
    make_item(1)
    audit_verify()
    written, release = threading.Event(), threading.Event()
    slow = {}

    def slow_writer():
        try:
            with transaction.atomic():
                slow["id"] = audit_record(actor=None, action="test.slow").pk
                written.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert written.wait(30)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '500ms'")  # a queue on any row lock would fail here
        fast = audit_record(actor=None, action="test.fast").pk
    assert fast == slow["id"] + 1
    audit_chain()  # the slow number is held by an open transaction: neither a gap nor linked
    assert not AuditLink.objects.filter(seq__gte=slow["id"]).exists()
    assert not AuditEvent.objects.filter(pk=slow["id"]).exists()
    release.set()
    thread.join(30)
    checked, at, why = audit_verify()
    assert at is None, why
    assert AuditLink.objects.filter(seq__in=[slow["id"], fast]).count() == 2
    assert not AuditEvent.objects.filter(action=audit.GAP).exists()


# --- Production settings -------------------------------------------------------------------------

def _deploy_check(tmp_path, **env):
    from pathlib import Path
    base = {**os.environ, "TSREVIEW_ENV": "production", "SECRET_KEY": "k3Vq8-rT2xZp9LmW4nB7yH1cF6dJ0sA5gE3uQ8wR2tY7iO4pL9zX6vN1bM5kC0", "ALLOWED_HOSTS": "review.example.org",
            "TSREVIEW_MEDIA_KEY": "a" * 43 + "=", "TSREVIEW_VAR_DIR": str(tmp_path)}
    for name in ("DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_OWNER_URL", "TSREVIEW_AUDIT_KEY", "TSREVIEW_AUDIT_CHECKPOINTS"):
        base.pop(name, None)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=Path(__file__).resolve().parent.parent, env={**base, **env}, capture_output=True,
                          text=True, timeout=120)


def test_check_deploy_wants_two_roles_an_audit_key_and_checkpoints(tmp_path):
    single = _deploy_check(tmp_path, DATABASE_URL="postgres://tsreview:pw@db.example.org/tsreview")
    assert single.returncode != 0
    for code in ("tsreview.W001", "tsreview.W002", "tsreview.W003"):
        assert code in single.stdout + single.stderr
    two = _deploy_check(tmp_path, DATABASE_URL="postgres://tsreview_app:pw@db.example.org/tsreview",
                        DATABASE_OWNER_URL="postgres://tsreview_owner:pw@db.example.org/tsreview",
                        TSREVIEW_AUDIT_KEY=TEST_AUDIT_KEY, TSREVIEW_AUDIT_CHECKPOINTS=str(tmp_path / "cp.jsonl"))
    assert two.returncode == 0, two.stdout + two.stderr
    assert "System check identified no issues" in two.stdout


# --- The embedded mode (SQLite): no roles, so the keyed chain and the checkpoint file do the work --

def test_on_sqlite_dropped_triggers_do_not_hide_an_edit_or_a_rewind(tmp_path):
    import shutil
    import sqlite3
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "DATABASE_OWNER_URL", "CELERY_BROKER_URL", "TSREVIEW_ENV")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'a.sqlite3'}", TSREVIEW_VAR_DIR=str(tmp_path),
               DJANGO_SETTINGS_MODULE="tsreview.settings")

    def manage(*args, db="a"):
        run_env = {**env, "DATABASE_URL": f"sqlite:///{tmp_path / (db + '.sqlite3')}"}
        return subprocess.run([sys.executable, "manage.py", *args], cwd=root, env=run_env, capture_output=True,
                              text=True, timeout=300)

    script = ("from django.core.management import call_command\nfrom django.db import transaction\n"
              "from reports.audit import audit_checkpoint, audit_record\n"
              "call_command('migrate', verbosity=0)\n"
              "for n in range(30):\n    with transaction.atomic():\n"  # linked as each is written
              "        audit_record(actor=None, action='test.event', data={'n': n})\n"
              "audit_checkpoint()\ncall_command('verify_audit')\n")
    intact = manage("shell", "-c", script)
    assert intact.returncode == 0 and "intact: 30 events" in intact.stdout, intact.stderr
    assert json.loads((tmp_path / "audit-checkpoints.jsonl").read_text().splitlines()[-1])["seq"] == 30
    shutil.copy(tmp_path / "a.sqlite3", tmp_path / "b.sqlite3")
    with sqlite3.connect(tmp_path / "a.sqlite3") as db:  # whoever can write the file
        db.execute("DROP TRIGGER reports_auditevent_no_update")
        db.execute("UPDATE reports_auditevent SET data = '{\"n\": 99}' WHERE id = 5")
    edited = manage("verify_audit")
    assert edited.returncode != 0 and "broken at event 5: the event does not match its link" in edited.stderr
    with sqlite3.connect(tmp_path / "b.sqlite3") as db:
        db.execute("DROP TRIGGER reports_auditevent_no_delete")
        db.execute("DROP TRIGGER reports_auditlink_no_delete")
        db.execute("DELETE FROM reports_auditevent WHERE id > 20")
        db.execute("DELETE FROM reports_auditlink WHERE seq > 20")
    rewound = manage("verify_audit", db="b")
    assert rewound.returncode != 0 and "head moved back" in rewound.stderr, rewound.stderr
