"""The render admin in-process: the editor's recipe and where its errors land, the JSON tab, Duplicate,
the buttons and actions, the media picker, the list, and Redis being down. Chromium runs the same
pages in test_render_editor_live.py.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.render_helpers import admin_form, closed_port_url, run_worker
from transforms.renders.models import RenderJob

ADD = "/admin/transforms/renderjob/add/"
LIST = "/admin/transforms/renderjob/"
PICKER = "/admin/transforms/renderjob/media/"
CLIPS = [{"video": "clips/intro.mp4", "start": 0.5, "end": 1.5}, {"image": "photo.jpg", "duration": 1, "zoom": 1.2},
         {"title": "Hi", "duration": 1, "font_size": 30, "color": "#ffff00", "background": "#202060"}]


def change_url(render: RenderJob) -> str:
    return f"/admin/transforms/renderjob/{render.pk}/change/"


def errors_of(html: str, row: int | None, field: str) -> list[str]:
    """The error messages shown for ``field`` of clip row ``row`` (0-based as posted), or of a top field."""
    name = f"clips-{row}-{field}" if row is not None else field
    match = re.search(rf'<ul class="errorlist" id="id_{re.escape(name)}_error">(.*?)</ul>', html, re.S)
    return re.findall(r"<li>(.*?)</li>", match.group(1)) if match else []


@pytest.mark.django_db(transaction=True)
def test_the_form_becomes_the_validated_recipe_and_save_and_start_opens_the_render(admin_client, sources, rq_redis):
    data = admin_form(CLIPS, fps=15, crossfade=0.2, audio_source="music.mp3", audio_volume=0.5, audio_loop="on")
    # The page showed the rows in another order than they were added: the order field decides.
    data.update({"clips-0-ORDER": 3, "clips-2-ORDER": 1})
    response = admin_client.post(ADD, data)
    render = RenderJob.objects.get()
    assert response.status_code == 302 and response["Location"] == change_url(render)
    assert render.started and render.status == "queued"
    assert render.recipe == {
        "size": [320, 180], "fps": 15, "format": "mp4", "crossfade": 0.2,
        "clips": [{"title": "Hi", "duration": 1.0, "font_size": 30, "color": "#ffff00", "background": "#202060"},
                  {"image": "photo.jpg", "duration": 1.0, "zoom": 1.2},
                  {"video": "clips/intro.mp4", "start": 0.5, "end": 1.5}],
        "audio": {"source": "music.mp3", "volume": 0.5, "loop": True, "start": 0.0},
    }
    page = admin_client.get(change_url(render)).content.decode()
    assert "was saved and started" in page
    assert 'data-render-action="cancel"' in page and 'name="_saveandstart"' not in page
    # A started render is shown, not edited: a POST to its page is refused.
    assert admin_client.post(change_url(render), admin_form([{"title": "changed"}])).status_code == 403
    assert RenderJob.objects.get().recipe == render.recipe


@pytest.mark.django_db(transaction=True)
def test_a_render_saved_without_starting_stays_editable(admin_client, sources, rq_redis):
    assert admin_client.post(ADD, admin_form([{"title": "draft"}], button="_save")).status_code == 302
    render = RenderJob.objects.get()
    assert not render.started
    page = admin_client.get(change_url(render)).content.decode()
    assert 'value="draft"' in page and 'name="_saveandstart"' in page
    assert 'data-render-action="start"' in page
    response = admin_client.post(change_url(render), admin_form([{"title": "final"}]))
    assert response.status_code == 302
    render.refresh_from_db()
    assert render.recipe["clips"][0]["title"] == "final" and render.started


ERRORS = [
    # (what the person typed, the row (as posted) and field that shows the validator's error)
    ({"clips-1-end": 5}, 1, "end", "at most 2 s, the length of clips/intro.mp4"),
    ({"clips-1-start": 3, "clips-1-end": ""}, 1, "start", "must be before the end"),
    ({"clips-2-zoom": 9}, 2, "zoom", "at most 4"),
    ({"clips-2-image": "../outside.jpg"}, 2, "image", "no such media file"),
    ({"clips-1-video": ""}, 1, "video", "Choose a video file."),
    ({"clips-0-color": "red"}, 0, "color", "hex colour"),
    ({"clips-0-title": ""}, 0, "title", "non-empty text"),
    ({"clips-0-duration": "abc"}, 0, "duration", "Enter a number."),
    ({"width": 321}, None, "width", "must be even"),
    ({"fps": 0}, None, "fps", "at least 1"),
    ({"audio_source": "music.mp3", "audio_volume": -1}, None, "audio_volume", "at least 0"),
    ({"audio_source": "photo.jpg"}, None, "audio_source", "photo.jpg"),
]


@pytest.mark.parametrize(("typed", "row", "field", "message"), ERRORS)
@pytest.mark.django_db(transaction=True)
def test_a_validator_error_is_shown_next_to_its_row_and_field(admin_client, sources, rq_redis, typed, row, field,
                                                               message):
    clips = [CLIPS[2], CLIPS[0], CLIPS[1]]  # title, video, image
    response = admin_client.post(ADD, admin_form(clips, **typed))
    assert response.status_code == 200
    html = response.content.decode()
    shown = errors_of(html, row, field)
    assert len(shown) == 1 and message in shown[0], (shown, re.findall(r'id="id_([\w-]+)_error"', html))
    assert len(re.findall(r'<ul class="errorlist" id=', html)) == 1  # only there
    assert RenderJob.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_removed_row_is_left_out_and_an_empty_list_is_refused(admin_client, sources, rq_redis):
    data = admin_form(CLIPS)
    for key in [key for key in data if key.startswith("clips-1-")]:
        del data[key]  # the page removed the row: its fields are not posted
    assert admin_client.post(ADD, data).status_code == 302
    assert [next(iter(clip)) for clip in RenderJob.objects.get().recipe["clips"]] == ["video", "title"]
    empty = admin_client.post(ADD, admin_form([]))
    assert "must be a non-empty list" in empty.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_json_tab_is_the_api_recipe(admin_client, sources, rq_redis):
    recipe = {"size": [320, 180], "fps": 12, "clips": [{"title": "json", "duration": 1}]}
    posted = {**admin_form([]), "editor": "json", "recipe_json": json.dumps(recipe)}
    assert admin_client.post(ADD, posted).status_code == 302
    assert RenderJob.objects.get().recipe["clips"] == [{"title": "json", "duration": 1.0, "font_size": 48,
                                                        "color": "#ffffff", "background": "#000000"}]
    wrong = {"editor": "json", "recipe_json": json.dumps({**recipe, "blink": 1, "fps": 0}), "_saveandstart": "1"}
    html = admin_client.post(ADD, wrong).content.decode()  # no form fields at all: the JSON alone counts
    shown = errors_of(html, None, "recipe_json")
    assert any(line.startswith("blink: unknown key") for line in shown) and any("fps:" in s for s in shown)
    assert "not JSON" in errors_of(admin_client.post(ADD, {**wrong, "recipe_json": "{"}).content.decode(),
                                   None, "recipe_json")[0]
    assert RenderJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_duplicate_prefills_a_new_render(admin_client, sources, rq_redis):
    admin_client.post(ADD, admin_form(CLIPS, button="_save", size_preset="1080x1080"))
    original = RenderJob.objects.get()
    html = admin_client.get(f"{ADD}?duplicate={original.pk}").content.decode()
    assert 'name="clips-TOTAL_FORMS" value="3"' in html
    assert 'value="clips/intro.mp4"' in html and 'value="Hi"' in html and 'value="1080x1080" selected' in html
    assert "2 s · 320×180" in html  # the chosen clip's length, as the picker shows it
    assert json.loads(re.search(r'<textarea name="recipe_json"[^>]*>(.*?)</textarea>', html, re.S).group(1)
                      .replace("&quot;", '"')) == original.recipe
    for bad in ("nonsense", "00000000-0000-0000-0000-000000000000"):
        assert 'name="clips-TOTAL_FORMS" value="0"' in admin_client.get(f"{ADD}?duplicate={bad}").content.decode()
    listed = admin_client.post(LIST, {"action": "duplicate_render", "_selected_action": [str(original.pk)]})
    assert listed["Location"] == f"{ADD}?duplicate={original.pk}"
    assert RenderJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_buttons_come_back_to_the_render_and_the_list_shows_poster_and_length(admin_client, sources, rq_redis):
    admin_client.post(ADD, admin_form([CLIPS[1], CLIPS[2]], button="_save"))
    render = RenderJob.objects.get()
    for action in ("start_renders", "cancel_renders", "retry_renders"):
        posted = {"action": action, "_selected_action": [str(render.pk)], "_from_change": "1"}
        response = admin_client.post(LIST, posted)
        assert response["Location"] == change_url(render), action
    run_worker()
    render.refresh_from_db()
    assert render.status == "complete"
    page = admin_client.get(change_url(render)).content.decode()
    assert f'src="/renders/{render.pk}.mp4"' in page and "complete" in page
    poster = re.search(r'poster="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "frame=0.2&" in poster and "size=320x180" in poster  # a tenth into its 2 s
    image = admin_client.get(poster)
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    listing = admin_client.get(LIST).content.decode()
    assert "2 s" in listing and f"/renders/{render.pk}.mp4?fit=cover&amp;frame=0.2&amp;size=96x54" in listing


@pytest.mark.django_db(transaction=True)
def test_the_picker_lists_by_kind_searches_and_stays_inside_media_root(admin_client, client, sources, rq_redis,
                                                                        settings, tmp_path):
    settings.TRANSFORMS_SIGNING = "required"
    (sources / ".hidden").mkdir()
    (sources / ".hidden" / "secret.mp4").write_bytes((sources / "clips" / "intro.mp4").read_bytes())
    outside = tmp_path / "outside.jpg"
    outside.write_bytes((sources / "photo.jpg").read_bytes())
    os.symlink(outside, sources / "link.jpg")
    (sources / "notes.txt").write_text("not media")

    videos = admin_client.get(PICKER, {"kind": "video"}).json()
    assert [(e["path"], e["duration"], e["width"]) for e in videos["results"]] == [("clips/intro.mp4", 2.0, 320)]
    frame = admin_client.get(videos["results"][0]["thumbnail"])  # signed: it passes TRANSFORMS_SIGNING=required
    assert frame.status_code == 200 and frame["Content-Type"] == "image/jpeg"
    assert "frame=0.2&" in videos["results"][0]["thumbnail"]
    images = admin_client.get(PICKER, {"kind": "image"}).json()["results"]
    assert [e["path"] for e in images] == ["photo.jpg"]  # not the symlink that leaves MEDIA_ROOT
    assert admin_client.get(PICKER, {"kind": "image", "q": "PHO"}).json()["results"][0]["path"] == "photo.jpg"
    assert admin_client.get(PICKER, {"kind": "image", "q": "nothing"}).json()["results"] == []
    audio = admin_client.get(PICKER, {"kind": "audio"}).json()["results"]
    assert [(e["path"], e["thumbnail"], e["duration"]) for e in audio] == [("music.mp3", "", pytest.approx(1, 0.1))]
    for path in ("../outside.jpg", "link.jpg", "/etc/hostname", ".hidden/secret.mp4"):
        assert admin_client.get(PICKER, {"kind": "image", "path": path}).json()["results"] == []
    bad = admin_client.get(PICKER, {"kind": "shell"})
    assert bad.status_code == 400 and bad.json()["parameter"] == "kind"
    assert client.get(PICKER, {"kind": "video"}).status_code == 302  # staff only: to the login page


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_render_is_saved_and_the_editor_keeps_it(admin_client, sources, settings):
    url = closed_port_url()
    settings.RQ_QUEUES = {name: {"URL": url} for name in ("default", settings.RENDER_QUEUE)}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    add = admin_client.get(ADD).content.decode()
    assert "can be saved but not started" in add
    response = admin_client.post(ADD, admin_form(CLIPS), follow=True)
    page = response.content.decode()
    render = RenderJob.objects.get()
    assert response.redirect_chain[-1][0] == change_url(render)
    assert "was not started" in page and "Start it again once Redis is back" in page
    assert not render.started and render.recipe["clips"][0]["video"] == "clips/intro.mp4"
    assert 'value="clips/intro.mp4"' in page and 'name="_saveandstart"' in page  # still there, editable


@pytest.mark.django_db(transaction=True)
def test_the_picker_is_for_those_who_may_make_renders(client, sources, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_renderjob"))
    client.force_login(user)
    assert client.get(PICKER, {"kind": "video"}).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="add_renderjob"))
    user = django_user_model.objects.get(pk=user.pk)  # permissions are cached on the instance
    client.force_login(user)
    assert client.get(PICKER, {"kind": "video"}).json()["results"][0]["path"] == "clips/intro.mp4"
