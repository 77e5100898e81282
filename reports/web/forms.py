"""The HTML forms: a decision, personal settings, the lead's filters and overturns, report pages."""

from django import forms

from ..intake.provenance import SOURCE_TYPES
from ..leads import selectors
from ..models import Decision, Report, ReviewerSettings, WellnessPolicy
from ..review.decisions import ANNOTATIONS
from ..review.wellness import SIZES


def refused_into(form, exc) -> None:
    """A stage's refusal shown on the form: each message on its field, or above the form."""
    for name, message in exc.errors.items():
        form.add_error(name if name in form.fields else None, message)


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
        super().__init__(*args, **kwargs)
        self.fields["reviewer"].queryset = selectors.people_who_decided()
        lists = selectors.hash_list_names()
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


# --- The lead's report pages -----------------------------------------------------------------

class ReportForm(forms.Form):
    """A lead's edits of a draft. The incident fields are derived from the files; a value typed
    here is an explicit override (shown as such), and an empty box goes back to the derived text."""

    incident_type = forms.ChoiceField(choices=Report.IncidentType.choices)
    incident_at = forms.DateTimeField(required=False, label="Incident date and time (override, with time zone)",
                                      widget=forms.TextInput(attrs={"placeholder": "derived from the files"}))
    incident_at_description = forms.CharField(required=False, label="How the incident time was determined (override)",
                                              widget=forms.Textarea(attrs={"rows": 2, "placeholder": "derived from the files"}))
    platform = forms.CharField(required=False, label="Platform (override)",
                               widget=forms.TextInput(attrs={"placeholder": "derived from the files"}))
    additional_info = forms.CharField(required=False, label="Additional information (override)",
                                      widget=forms.Textarea(attrs={"rows": 4, "placeholder": "derived from the files"}))
    annotations = forms.MultipleChoiceField(choices=Report.Annotation.choices, required=False,
                                            widget=forms.CheckboxSelectMultiple, label="Report annotations")
    urgent = forms.BooleanField(required=False, label="Urgent: immediate risk to a child (sent ahead of other reports)")
    urgent_reason = forms.CharField(required=False, max_length=3000, label="Why it is urgent (escalateToHighPriority)",
                                    widget=forms.Textarea(attrs={"rows": 2, "maxlength": 3000}))
    batched = forms.BooleanField(required=False, label="Batch of sightings of widely shared material (viral, potential meme)")

    @classmethod
    def for_report(cls, report: Report):
        initial = {"incident_type": report.incident_type, **report.overrides, "annotations": report.annotations,
                   "urgent": report.urgent, "urgent_reason": report.urgent_reason, "batched": report.batched}
        return cls(initial=initial)

    def clean(self):
        data = super().clean()
        if data.get("urgent") and not (data.get("urgent_reason") or "").strip():
            self.add_error("urgent_reason", "Say why the report is urgent: NCMEC reads this text.")
        if not data.get("urgent"):
            data["urgent_reason"] = ""
        data.pop("urgent", None)
        return data


class AttestForm(forms.Form):
    field = forms.CharField(max_length=200)
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class MoveForm(forms.Form):
    target = forms.CharField(max_length=20, help_text="A draft's number, or 'new'.")


class HoldExtendForm(forms.Form):
    until = forms.DateTimeField(help_text="The new end of the hold.")
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class DestroyForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="The law-enforcement request: agency and reference.")
