"""The keyed chain (AuditLink) and the append-only rules the runtime role cannot get around.

Audit events no longer carry their own hash: writers only insert, and the chaining step links
them in AuditLink (reports/audit.py). On PostgreSQL every append-only table also refuses
TRUNCATE (a statement-level trigger, the second line behind the runtime role's privileges), and
a reveal's measures (seconds, reported, painted) may be written once, nothing else ever.
"""

from django.db import migrations, models

APPEND_ONLY = ["reports_auditevent", "reports_decision", "reports_auditlink"]
WRITE_ONCE = "reports_viewevent"  # deletes refused; one update of its measures

POSTGRES_MEASURED_ONCE = """
CREATE OR REPLACE FUNCTION tsreview_measured_once() RETURNS trigger AS $$
BEGIN
    IF OLD.reported OR (to_jsonb(NEW) - 'seconds' - 'reported' - 'painted')
                       IS DISTINCT FROM (to_jsonb(OLD) - 'seconds' - 'reported' - 'painted') THEN
        RAISE EXCEPTION 'tsreview: UPDATE on %% is refused: a reveal is measured once, and nothing else changes (append-only)',
            TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def _sqlite_refuse(table, op, when=""):
    return (f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} {when}"
            f"BEGIN SELECT RAISE(ABORT, 'tsreview: {op} on {table} is refused: the table is append-only'); END")


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    run = schema_editor.execute
    if vendor == "postgresql":
        # Ids now come from the table's identity sequence (they were set by hand before).
        run("SELECT setval(pg_get_serial_sequence('reports_auditevent', 'id'), "
            "coalesce((SELECT max(id) FROM reports_auditevent), 0) + 1, false)")
        run("CREATE TRIGGER reports_auditlink_append_only BEFORE UPDATE OR DELETE ON reports_auditlink "
            "FOR EACH ROW EXECUTE FUNCTION tsreview_append_only()")
        run(POSTGRES_MEASURED_ONCE)
        run(f"CREATE TRIGGER {WRITE_ONCE}_append_only BEFORE DELETE ON {WRITE_ONCE} "
            "FOR EACH ROW EXECUTE FUNCTION tsreview_append_only()")
        run(f"CREATE TRIGGER {WRITE_ONCE}_measured_once BEFORE UPDATE ON {WRITE_ONCE} "
            "FOR EACH ROW EXECUTE FUNCTION tsreview_measured_once()")
        for table in [*APPEND_ONLY, WRITE_ONCE]:
            run(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION tsreview_append_only()")
    elif vendor == "sqlite":
        # Rebuilding a table (RemoveField) drops its triggers on SQLite: make them all again.
        for table in APPEND_ONLY:
            run(_sqlite_refuse(table, "UPDATE"))
            run(_sqlite_refuse(table, "DELETE"))
        run(_sqlite_refuse(WRITE_ONCE, "DELETE"))
        run(_sqlite_refuse(WRITE_ONCE, "UPDATE", "WHEN OLD.reported OR NEW.id IS NOT OLD.id OR NEW.item_id IS NOT "
                           "OLD.item_id OR NEW.user_id IS NOT OLD.user_id OR NEW.claim_id IS NOT OLD.claim_id OR "
                           "NEW.mode IS NOT OLD.mode OR NEW.started_at IS NOT OLD.started_at OR NEW.rendering IS NOT "
                           "OLD.rendering OR NEW.frame IS NOT OLD.frame OR NEW.segment IS NOT OLD.segment OR "
                           "NEW.sound IS NOT OLD.sound "))


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    run = schema_editor.execute
    if vendor == "postgresql":
        for table in [*APPEND_ONLY, WRITE_ONCE]:
            run(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        run(f"DROP TRIGGER IF EXISTS {WRITE_ONCE}_append_only ON {WRITE_ONCE}")
        run(f"DROP TRIGGER IF EXISTS {WRITE_ONCE}_measured_once ON {WRITE_ONCE}")
        run("DROP TRIGGER IF EXISTS reports_auditlink_append_only ON reports_auditlink")
    elif vendor == "sqlite":
        run(f"DROP TRIGGER IF EXISTS {WRITE_ONCE}_no_update")
        run(f"DROP TRIGGER IF EXISTS {WRITE_ONCE}_no_delete")


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0008_report_statements'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditLink',
            fields=[
                ('seq', models.BigIntegerField(primary_key=True, serialize=False)),
                ('key_id', models.CharField(max_length=32)),
                ('mac', models.CharField(max_length=64)),
                ('linked_at', models.DateTimeField()),
            ],
        ),
        migrations.DeleteModel(
            name='AuditHead',
        ),
        migrations.RemoveField(
            model_name='auditevent',
            name='hash',
        ),
        migrations.RemoveField(
            model_name='auditevent',
            name='prev_hash',
        ),
        migrations.AddField(
            model_name='auditevent',
            name='subject_row',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='auditevent',
            index=models.Index(fields=['subject_kind', 'subject_id'], name='audit_subject'),
        ),
        migrations.RunPython(create, drop),
    ]
