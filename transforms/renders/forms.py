"""The admin's render editor: a recipe as form fields and ordered clip rows, and back again.

Editors fill in an output size, an ordered list of clips (rows added, removed and moved in
the page; each row one video clip, still image or title card) and the music, choosing
files with the media picker (``picker.py``). The one check is the API's:
``recipes.validate_recipe``. The form only turns its fields into recipe JSON and puts
each error the validator names (``clips[2].end``, ``audio.volume``, ``size``) next to the
row and field it concerns; rows are numbered in the order they are shown, as the recipe's
clips are.

Power users switch to "Recipe as JSON" (``editor=json``): the textarea is then validated
exactly as the API would, and its errors are listed on it. The page's script
(``render-editor.js``) turns the fields into that JSON and the JSON back into fields
when the tab changes, so both views stay one recipe.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms
from django.forms.formsets import ORDERING_FIELD_NAME
from django.forms.utils import ErrorList

from . import picker
from .errors import InvalidRecipe
from .models import RenderJob
from .recipes import AUDIO_DEFAULTS, CLIP_DEFAULTS, FORMATS, RECIPE_DEFAULTS, validate_recipe

SIZE_PRESETS = [
    ("1280x720", "1280 × 720 (HD, landscape)"),
    ("1920x1080", "1920 × 1080 (Full HD, landscape)"),
    ("1080x1080", "1080 × 1080 (square)"),
    ("1080x1920", "1080 × 1920 (vertical, for phones)"),
    ("640x360", "640 × 360 (small, quick to render)"),
    ("custom", "Custom size…"),
]
CUSTOM = "custom"
FORMAT_LABELS = {"mp4": "MP4 (H.264 + AAC): plays everywhere", "webm": "WebM (VP9 + Opus)"}
CLIP_LABELS = {"video": "Video clip", "image": "Still image", "title": "Title card"}
# A row's fields in the order they are shown; the names are the recipe's keys (recipes.CLIP_KEYS).
CLIP_FIELDS = {
    "video": ["video", "start", "end"],
    "image": ["image", "duration", "zoom"],
    "title": ["title", "duration", "font_size", "color", "background"],
}
CLIP_PATH = re.compile(r"^clips\[(\d+)\](?:\.(\w+))?$")
TOP_FIELDS = ("fps", "format", "crossfade")


def seconds_field(label: str, help_text: str = "", minimum: str = "0") -> forms.FloatField:
    widget = forms.NumberInput(attrs={"step": "0.1", "min": minimum, "class": "vIntegerField"})
    return forms.FloatField(required=False, label=label, help_text=help_text, widget=widget)


def colour_field(label: str) -> forms.CharField:
    return forms.CharField(required=False, label=label, widget=forms.TextInput(attrs={"type": "color"}))


class MediaPicker(forms.TextInput):
    """A path under MEDIA_ROOT, typed or chosen from the picker, shown with its thumbnail and length."""

    template_name = "transforms/widgets/media_picker.html"

    def __init__(self, kind: str, attrs: dict[str, Any] | None = None) -> None:
        article = "an" if kind[0] in "aeiou" else "a"
        super().__init__({"class": "vTextField render-picker-input", "placeholder": f"{article} {kind} file",
                          **(attrs or {})})
        self.kind = kind

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        entry = picker.describe(str(value), self.kind) if value else None
        context["widget"].update(kind=self.kind, entry=entry, info=picker.entry_label(entry) if entry else "")
        return context


class ClipForm(forms.Form):
    """One clip row. Only the fields of its kind are shown and read (``CLIP_FIELDS``)."""

    kind = forms.ChoiceField(choices=list(CLIP_LABELS.items()), required=False, widget=forms.HiddenInput)
    video = forms.CharField(required=False, label="Video file", widget=MediaPicker("video"))
    image = forms.CharField(required=False, label="Image file", widget=MediaPicker("image"))
    title = forms.CharField(required=False, label="Text", widget=forms.TextInput(attrs={"class": "vTextField"}))
    start = seconds_field("Start (s)")
    end = seconds_field("End (s)", "empty: to the end of the clip")
    duration = seconds_field("Duration (s)")
    zoom = forms.FloatField(required=False, label="Zoom", help_text="1: still; 1.2: slowly closer, to 120%",
                            widget=forms.NumberInput(attrs={"step": "0.05", "min": "1", "class": "vIntegerField"}))
    font_size = forms.IntegerField(required=False, label="Font size",
                                   widget=forms.NumberInput(attrs={"min": "4", "class": "vIntegerField"}))
    color = colour_field("Text colour")
    background = colour_field("Background")

    @property
    def kind_name(self) -> str | None:
        kind = self.data.get(self.add_prefix("kind")) if self.is_bound else self.initial.get("kind")
        return kind if kind in CLIP_FIELDS else None

    @property
    def label(self) -> str:
        return CLIP_LABELS.get(self.kind_name or "", "Clip")

    def kind_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in CLIP_FIELDS.get(self.kind_name or "", [])]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind = self.kind_name
        if kind in ("video", "image") and not cleaned.get(kind):
            self.add_error(kind, f"Choose a {'video' if kind == 'video' else 'image'} file.")
        return cleaned

    def clip(self) -> dict[str, Any]:
        """The recipe's clip: the kind's fields that were filled in (empty ones take the recipe's defaults)."""
        kind = self.kind_name or "title"
        clip: dict[str, Any] = {kind: self.cleaned_data.get(kind) or ""}
        for name in CLIP_FIELDS[kind][1:]:
            value = self.cleaned_data.get(name)
            if value is not None and value != "":
                clip[name] = value
        return clip


class ClipFormSet(forms.BaseFormSet):
    """The ordered rows. A row the page removed is simply absent from the POST: rows without a kind are skipped."""

    ordering_widget = forms.HiddenInput

    def _construct_form(self, i: int, **kwargs: Any) -> forms.Form:
        # A row left at its defaults is still a clip (a title card with the default duration).
        return super()._construct_form(i, empty_permitted=False, **kwargs)

    def rows(self) -> list[ClipForm]:
        """The clips in the order they are shown: by their order field, then as posted."""
        present = [form for form in self.forms if form.kind_name is not None]

        def position(item: tuple[int, ClipForm]) -> tuple[int, int]:
            index, form = item
            raw = form[ORDERING_FIELD_NAME].data if self.is_bound else form[ORDERING_FIELD_NAME].initial
            try:
                return int(raw), index
            except (TypeError, ValueError):
                return 1 << 30, index

        return [form for _, form in sorted(enumerate(present), key=position)]

    def template_row(self, kind: str) -> ClipForm:
        """An empty row of ``kind`` for the page to copy (``__prefix__`` becomes the next index)."""
        form = self.form(auto_id=self.auto_id, prefix=self.add_prefix("__prefix__"), use_required_attribute=False,
                         initial=clip_initial({kind: ""}), renderer=self.renderer)
        self.add_fields(form, None)
        return form


ClipRows = forms.formset_factory(ClipForm, formset=ClipFormSet, extra=0, can_order=True)


def clip_initial(clip: dict[str, Any]) -> dict[str, Any]:
    kind = next((kind for kind in CLIP_FIELDS if kind in clip), "title")
    return {"kind": kind, **CLIP_DEFAULTS[kind], **clip}


def form_initial(recipe: dict[str, Any]) -> dict[str, Any]:
    """The editor's top fields for ``recipe`` (the clips become rows)."""
    recipe = {**RECIPE_DEFAULTS, **recipe}
    width, height = recipe["size"] if isinstance(recipe["size"], list) and len(recipe["size"]) == 2 else (0, 0)
    preset = f"{width}x{height}"
    audio = {**AUDIO_DEFAULTS, **(recipe.get("audio") or {})}
    return {
        "editor": "form",
        "size_preset": preset if preset in dict(SIZE_PRESETS) else CUSTOM,
        "width": width, "height": height,
        "fps": recipe["fps"], "format": recipe["format"], "crossfade": recipe["crossfade"],
        "audio_source": audio.get("source", ""), "audio_volume": audio["volume"],
        "audio_loop": audio["loop"], "audio_start": audio["start"],
        "recipe_json": json.dumps(recipe, indent=2),
    }


class RenderForm(forms.ModelForm):
    """The editor. ``clean`` leaves the validated recipe on the instance, or errors where they belong."""

    editor = forms.ChoiceField(choices=[("form", "form"), ("json", "json")], required=False, initial="form",
                               widget=forms.HiddenInput)
    size_preset = forms.ChoiceField(choices=SIZE_PRESETS, required=False, label="Size")
    width = forms.IntegerField(required=False, label="Width (px)", help_text="even, 16 or more",
                               widget=forms.NumberInput(attrs={"step": "2", "min": "16", "class": "vIntegerField"}))
    height = forms.IntegerField(required=False, label="Height (px)",
                                widget=forms.NumberInput(attrs={"step": "2", "min": "16", "class": "vIntegerField"}))
    fps = forms.IntegerField(required=False, label="Frames per second",
                             widget=forms.NumberInput(attrs={"min": "1", "class": "vIntegerField"}))
    format = forms.ChoiceField(choices=[(f, FORMAT_LABELS[f]) for f in FORMATS], required=False)
    crossfade = seconds_field("Crossfade (s)", "how long each clip fades in over the previous one; 0: straight cuts")
    audio_source = forms.CharField(required=False, label="Music", widget=MediaPicker("audio"),
                                   help_text="optional: a track played under the whole render")
    audio_volume = forms.FloatField(required=False, label="Volume", help_text="1: as recorded; 0.5: half",
                                    widget=forms.NumberInput(attrs={"step": "0.1", "min": "0",
                                                                    "class": "vIntegerField"}))
    audio_loop = forms.BooleanField(required=False, label="Loop a short track")
    audio_start = seconds_field("Start the track at (s)")
    recipe_json = forms.CharField(required=False, label="Recipe", widget=forms.Textarea(
        attrs={"rows": 20, "cols": 90, "spellcheck": "false", "style": "font-family: monospace"}))

    class Meta:
        model = RenderJob
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        recipe = self.initial.get("recipe") or self.instance.recipe or {}
        self.initial.update(form_initial(recipe))
        self.clips = ClipRows(self.data if self.is_bound else None, prefix="clips",
                              initial=[clip_initial(clip) for clip in recipe.get("clips", [])])
        self.clip_templates = {kind: self.clips.template_row(kind) for kind in CLIP_FIELDS}
        self.clip_errors = ErrorList()

    @property
    def json_mode(self) -> bool:
        return self.is_bound and self.data.get(self.add_prefix("editor")) == "json"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.json_mode:
            for name in [name for name in self._errors if name != "recipe_json"]:
                del self._errors[name]  # the form's fields are not what is being saved
            data = self._recipe_from_json(cleaned.get("recipe_json") or "")
        else:
            data = self._recipe_from_fields(cleaned)
        if data is not None:
            try:
                self.instance.recipe = validate_recipe(data)
            except InvalidRecipe as exc:
                self._place_errors(exc.fields)
        if not self.json_mode and not self.errors and (self.clip_errors or any(r.errors for r in self.clips.rows())):
            self.add_error(None, "Some clips need attention: see the marked fields.")
        return cleaned

    def _recipe_from_json(self, text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError as exc:
            self.add_error("recipe_json", f"This is not JSON: {exc}")
            return None

    def _recipe_from_fields(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        recipe: dict[str, Any] = {}
        preset = cleaned.get("size_preset") or CUSTOM
        if preset != CUSTOM:
            recipe["size"] = [int(part) for part in preset.split("x")]
        elif cleaned.get("width") is not None and cleaned.get("height") is not None:
            recipe["size"] = [cleaned["width"], cleaned["height"]]
        else:
            self.add_error("width", "Enter a width and a height for a custom size.")
        recipe.update({name: cleaned[name] for name in TOP_FIELDS if cleaned.get(name) not in (None, "")})
        rows = self.clips.rows()
        for row in rows:
            row.is_valid()  # a row with a bad number still gives its other fields to the validator
        recipe["clips"] = [row.clip() for row in rows]
        if cleaned.get("audio_source"):
            recipe["audio"] = {"source": cleaned["audio_source"], "loop": bool(cleaned.get("audio_loop"))}
            for name in ("volume", "start"):
                if cleaned.get(f"audio_{name}") is not None:
                    recipe["audio"][name] = cleaned[f"audio_{name}"]
        return recipe

    def _place_errors(self, fields: dict[str, list[str]]) -> None:
        """Each of the validator's errors beside its field: a row's field, a top field, or the clip list."""
        if self.json_mode:
            self.add_error("recipe_json", [f"{path}: {message}" for path, problems in fields.items()
                                           for message in problems])
            return
        rows = self.clips.rows()
        for path, messages in fields.items():
            match = CLIP_PATH.match(path)
            if match and int(match.group(1)) < len(rows):
                row, name = rows[int(match.group(1))], match.group(2)
                _add_once(row, name if name in row.fields else None, messages)
            elif path == "clips" or match:
                self.clip_errors.extend(messages)
            else:
                field = self._field_for(path)
                _add_once(self, field, messages if field else [f"{path}: {message}" for message in messages])

    def _field_for(self, path: str) -> str | None:
        if path == "size":
            return "width" if (self.cleaned_data.get("size_preset") or CUSTOM) == CUSTOM else "size_preset"
        if path.startswith("audio"):
            name = "audio_" + path.partition(".")[2]
            return name if name in self.fields else "audio_source"
        return path if path in self.fields else None


def _add_once(form: forms.Form, field: str | None, messages: list[str]) -> None:
    """Add the validator's messages unless the field already says what is wrong (a number that is not one)."""
    if field is not None and field in form.errors:
        return
    form.add_error(field, messages)
