from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reports", "0006_moving_media")]

    operations = [
        migrations.AddField(
            model_name="report",
            name="submit_started_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
