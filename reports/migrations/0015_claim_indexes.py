"""Claim indexes: the old priority-order index goes (claims order by rank_at, item_claim_rank),
and a reviewer's decisions are indexed with their items, so that blind QA's "has this reviewer
decided this item?" is one probe whatever the planner's statistics say (with only the
reviewer's own index, a young table's statistics made PostgreSQL scan all of that reviewer's
decisions for every candidate). The reviewer's own index is dropped on PostgreSQL only: on
SQLite dropping it means rebuilding the table, which would drop its append-only triggers, and
the embedded mode keeps it."""

from django.conf import settings
from django.db import migrations, models


def reviewer_index_drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                       "AND tablename = 'reports_decision' AND indexdef LIKE %s", ["%(reviewer_id)"])
        names = [row[0] for row in cursor.fetchall()]
    for name in names:
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def reviewer_index_restore(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    name = schema_editor._create_index_name("reports_decision", ["reviewer_id"])
    schema_editor.execute(f"CREATE INDEX {schema_editor.quote_name(name)} ON reports_decision (reviewer_id)")


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0014_closing_the_loop'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='item',
            name='item_claim_order',
        ),
        migrations.AddIndex(
            model_name='decision',
            index=models.Index(fields=['reviewer', 'item'], name='decision_reviewer_item'),
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(reviewer_index_drop, reviewer_index_restore)],
            state_operations=[
                migrations.AlterField(
                    model_name='decision',
                    name='reviewer',
                    field=models.ForeignKey(db_index=False, on_delete=models.deletion.PROTECT,
                                            related_name='decisions', to=settings.AUTH_USER_MODEL),
                ),
            ],
        ),
    ]
