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
