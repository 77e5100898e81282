from django import forms

from .decisions import ANNOTATIONS
from .models import Decision, ReviewerSettings, WellnessPolicy
from .wellness import SIZES


class DecisionForm(forms.Form):
    verdict = forms.ChoiceField(choices=Decision.Verdict.choices, widget=forms.RadioSelect)
    classification = forms.ChoiceField(choices=Decision.Classification.choices[1:], required=False, widget=forms.RadioSelect)
    reason = forms.ChoiceField(choices=Decision.Reason.choices[1:], required=False, widget=forms.RadioSelect)
    annotations = forms.MultipleChoiceField(choices=list(ANNOTATIONS.items()), required=False, widget=forms.CheckboxSelectMultiple)
    note = forms.CharField(required=False, max_length=3000, widget=forms.Textarea(attrs={"rows": 2}))


class SettingsForm(forms.ModelForm):
    """A reviewer's own settings, refused outside the admin's limits."""

    class Meta:
        model = ReviewerSettings
        fields = ["blur", "greyscale", "reveal_mode", "reveal_seconds", "size"]
        labels = {"greyscale": "Show revealed images in greyscale", "reveal_seconds": "Seconds before re-blur (click mode)"}

    def __init__(self, *args, policy: WellnessPolicy, **kwargs):
        super().__init__(*args, **kwargs)
        self.policy = policy

    def clean_blur(self):
        blur = self.cleaned_data["blur"]
        if blur < self.policy.min_blur:
            raise forms.ValidationError(f"The lightest blur allowed is {ReviewerSettings.Blur(self.policy.min_blur).label}.")
        return blur

    def clean_greyscale(self):
        if not self.cleaned_data["greyscale"] and not self.policy.allow_colour:
            raise forms.ValidationError("Colour is turned off for everyone by the admin.")
        return self.cleaned_data["greyscale"]

    def clean_reveal_seconds(self):
        seconds = self.cleaned_data["reveal_seconds"]
        if not 1 <= seconds <= self.policy.max_reveal_seconds:
            raise forms.ValidationError(f"Between 1 and {self.policy.max_reveal_seconds} seconds.")
        return seconds

    def clean_size(self):
        size = self.cleaned_data["size"]
        if SIZES.index(size) > SIZES.index(self.policy.max_size):
            raise forms.ValidationError(f"The largest size allowed is {self.policy.max_size}.")
        return size


class DecisionLogFilter(forms.Form):
    reviewer = forms.ModelChoiceField(queryset=None, required=False, empty_label="Anyone")
    verdict = forms.ChoiceField(choices=[("", "Any verdict")] + Decision.Verdict.choices, required=False)
    classification = forms.ChoiceField(choices=[("", "Any class")] + Decision.Classification.choices[1:], required=False)
    hash_list = forms.ChoiceField(choices=[], required=False, label="Hash list")
    source_type = forms.ChoiceField(choices=[], required=False, label="Source")
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        from django.contrib.auth import get_user_model

        from .models import Match
        from .provenance import SOURCE_TYPES

        super().__init__(*args, **kwargs)
        self.fields["reviewer"].queryset = get_user_model().objects.filter(decisions__isnull=False).distinct().order_by("username")
        lists = Match.objects.order_by("list_name").values_list("list_name", flat=True).distinct()
        self.fields["hash_list"].choices = [("", "Any list")] + [(name, name) for name in lists]
        self.fields["source_type"].choices = [("", "Any source")] + [(s, s.replace("_", " ")) for s in SOURCE_TYPES]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError("The start date is after the end date.")
        return data


class OverturnForm(forms.Form):
    verdict = forms.ChoiceField(choices=Decision.Verdict.choices[:2], widget=forms.RadioSelect)
    classification = forms.ChoiceField(choices=Decision.Classification.choices[1:], required=False, widget=forms.RadioSelect)
    reason = forms.ChoiceField(choices=Decision.Reason.choices[1:], required=False, widget=forms.RadioSelect)
    note = forms.CharField(max_length=3000, widget=forms.Textarea(attrs={"rows": 2}), label="Why")
