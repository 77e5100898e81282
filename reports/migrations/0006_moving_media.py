# Moving media (videos): their length, sampled frames and frame PDQs, why none could be made; which frame or segment a view showed and whether with sound; what a decision saw; seconds of sound heard.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('reports', '0005_painted_views'),
    ]

    operations = [
        migrations.AddField(
            model_name='decision',
            name='played_segments',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='decision',
            name='viewed_frames',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='exposureday',
            name='audio_seconds',
            field=models.FloatField(default=0),
        ),
        migrations.AddField(
            model_name='item',
            name='duration_seconds',
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='item',
            name='frame_pdqs',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='item',
            name='frame_times',
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name='item',
            name='unreviewable_reason',
            field=models.CharField(blank=True, max_length=400),
        ),
        migrations.AddField(
            model_name='viewevent',
            name='frame',
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='viewevent',
            name='segment',
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name='viewevent',
            name='sound',
            field=models.BooleanField(default=False),
        ),
    ]
