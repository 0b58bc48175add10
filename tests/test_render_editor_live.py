"""An editor's path through the render admin, in headless Chromium, by clicks and typing only.

Real gunicorn, a real ``manage.py rqworker`` running MoviePy, a private redis-server (the
``stack`` and ``start_worker`` fixtures of tests/render_helpers.py). Screenshots of the form
and the finished page go to $ADMIN_SHOTS (default /tmp/admin-shots) for people to look at.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import requests

from tests.render_helpers import ffprobe

SHOTS = Path(os.environ.get("ADMIN_SHOTS", "/tmp/admin-shots"))
LIST = "/admin/transforms/renderjob/"
# Every value the progress bar shows, recorded in the page as it changes (no polling gaps).
RECORD_PROGRESS = """
window.__progress = [];
new MutationObserver(() => {
  const bar = document.querySelector('[data-render-progress] progress');
  if (bar) window.__progress.push(Number(bar.value));
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['value']});
"""


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def row(page, number: int):
    return page.locator("[data-clip-list] > [data-clip]").nth(number - 1)


def pick(page, clip, query: str, expected: str, screenshot: str = "") -> None:
    """Open the row's picker, search by name, click the file; its thumbnail and length show in the row."""
    clip.locator("[data-pick]").click()
    dialog = page.locator("[data-picker-dialog]")
    dialog.locator("[data-picker-search]").fill(query)
    choice = dialog.locator(f"[data-picker-choice][data-path='{expected}']")
    choice.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('[data-picker-choice] img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    assert dialog.locator("[data-picker-choice]").count() == 1
    if screenshot:
        shot(page, screenshot)
    choice.click()
    assert clip.locator(".render-picker-input").input_value() == expected


def add_clips(page) -> None:
    """A video clip (with an end past its 2 s), a slowly zooming still, and a title card moved to the front."""
    page.click("[data-add-clip=video]")
    video = row(page, 1)
    pick(page, video, "intro", "clips/intro.mp4", "00-picker.png")
    assert video.locator("[data-picker-info]").inner_text() == "2 s · 320×180"
    video.locator("[name$='-start']").fill("0.2")
    video.locator("[name$='-end']").fill("5")
    page.click("[data-add-clip=image]")
    still = row(page, 2)
    pick(page, still, "PHOTO", "photo.jpg")
    still.locator("[name$='-duration']").fill("6")
    still.locator("[name$='-zoom']").fill("1.2")
    page.click("[data-add-clip=title]")
    row(page, 3).locator("[name$='-title']").fill("Hello from the admin")
    row(page, 3).locator("[name$='-duration']").fill("0.6")
    row(page, 3).locator("[data-clip-up]").click()
    row(page, 2).locator("[data-clip-up]").click()
    kinds = page.eval_on_selector_all("[data-clip-list] > [data-clip]", "rows => rows.map(r => r.dataset.kind)")
    assert kinds == ["title", "video", "image"]


def fill_the_form(page) -> None:
    page.click(".object-tools a.addlink")
    page.select_option("#id_size_preset", "custom")
    page.fill("#id_width", "320")
    page.fill("#id_height", "180")
    page.fill("#id_fps", "12")
    add_clips(page)
    # The JSON tab shows the same recipe, and going back keeps the form as it was.
    page.click("[data-editor-tab=json]")
    recipe = json.loads(page.input_value("#id_recipe_json"))
    assert recipe["size"] == [320, 180] and recipe["fps"] == 12
    assert [next(iter(clip)) for clip in recipe["clips"]] == ["title", "video", "image"]
    assert recipe["clips"][1] == {"video": "clips/intro.mp4", "start": 0.2, "end": 5}
    shot(page, "01-json-tab.png")
    page.click("[data-editor-tab=form]")
    assert row(page, 1).locator("[name$='-title']").input_value() == "Hello from the admin"
    assert page.locator("[data-clip-list] > [data-clip]").count() == 3
    shot(page, "01-form.png")


def save_fix_and_start(page) -> str:
    """The validator's error for the end past the clip sits on that row's End field, nowhere else; fixed, it starts."""
    page.click("input[name=_saveandstart]")
    page.wait_for_load_state()
    assert "at most 2 s" in row(page, 2).locator(".field-end .errorlist").inner_text()
    assert page.locator(".render-clip .errorlist").count() == 1
    assert row(page, 2).locator("[data-picker-info]").inner_text() == "2 s · 320×180"
    shot(page, "02-field-error.png")
    row(page, 2).locator("[name$='-end']").fill("1.2")
    page.add_init_script(RECORD_PROGRESS)
    page.click("input[name=_saveandstart]")
    page.wait_for_url("**/change/")
    page.evaluate("window.__same_page = true")
    shot(page, "03-running.png")
    return page.url.rstrip("/").split("/")[-2]


def watch_to_the_end(page, stack, render_id: str) -> None:
    """The bar rises, then the heading, the buttons and the player change without a reload."""
    page.wait_for_selector("[data-render-heading]:text-is('complete')", timeout=90000)
    seen = page.evaluate("window.__progress")
    assert seen == sorted(seen) and seen[-1] == 100, seen
    assert any(0 < value < 100 for value in seen), seen
    assert page.evaluate("window.__same_page") is True
    assert page.locator("button.render-button-cancel").is_hidden()
    assert page.locator("button.render-button-retry").is_hidden()
    video = page.locator("[data-render-player] video")
    video.wait_for(state="visible")
    answer = requests.get(stack.url + video.get_attribute("poster"), timeout=30)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/jpeg"
    assert page.locator("a.render-download").get_attribute("href") == f"/renders/{render_id}.mp4"
    page.wait_for_function("() => document.querySelector('[data-render-player] video').readyState >= 1")
    shot(page, "04-complete.png")
    # Play it: the element gets data to show and its clock moves.
    video.click()
    page.wait_for_function("() => { const v = document.querySelector('[data-render-player] video');"
                           " return v.readyState >= 2 && v.currentTime > 0.3; }", timeout=20000)
    probe = ffprobe(stack.media / "renders" / f"{render_id}.mp4")
    assert 7.5 <= float(probe["format"]["duration"]) <= 8.2


def duplicate_and_start(page, stack) -> str:
    page.click("a.render-button-duplicate")
    page.wait_for_url("**/add/?duplicate=*")
    assert page.locator("[data-clip-list] > [data-clip]").count() == 3
    title = row(page, 1).locator("[name$='-title']")
    assert title.input_value() == "Hello from the admin"
    title.fill("Second take")
    page.click("input[name=_saveandstart]")
    page.wait_for_url("**/change/")
    copy_id = page.url.rstrip("/").split("/")[-2]
    page.wait_for_selector("[data-render-heading]:text-is('complete')", timeout=90000)
    assert "“Second take”" in page.locator(".field-recipe_summary").inner_text()
    assert stack.status(copy_id)["status"] == "complete"
    assert (stack.media / "renders" / f"{copy_id}.mp4").is_file()
    return copy_id


def test_an_editor_makes_watches_plays_and_duplicates_a_render(stack, start_worker, page):
    start_worker()
    stack.log_in(page, LIST)
    fill_the_form(page)
    render_id = save_fix_and_start(page)
    watch_to_the_end(page, stack, render_id)
    copy_id = duplicate_and_start(page, stack)
    assert copy_id != render_id

    # The list tells them apart: a poster, the status and the length of each.
    page.goto(stack.url + LIST)
    page.wait_for_function("() => [...document.querySelectorAll('img.render-thumb')]"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    for task_id in (render_id, copy_id):
        line = page.locator("#result_list tr", has=page.locator(f"[data-render-id='{task_id}']"))
        assert line.locator(".render-status").inner_text() == "complete"
        assert line.locator(".field-length").inner_text() == "7.6 s"
        assert line.locator("img.render-thumb").evaluate("i => i.naturalWidth") == 96
    shot(page, "05-list.png")


def test_json_typed_in_the_json_tab_becomes_the_form_and_back(stack, page):
    recipe = {"size": [1080, 1920], "fps": 25, "format": "webm", "crossfade": 0.3,
              "clips": [{"video": "clips/intro.mp4", "start": 0, "end": 1},
                        {"image": "photo.jpg", "duration": 2, "zoom": 1.1},
                        {"title": "From JSON", "duration": 1, "font_size": 40, "color": "#ff8800",
                         "background": "#000000"}],
              "audio": {"source": "music.mp3", "volume": 0.5, "loop": False, "start": 0.5}}
    stack.log_in(page, LIST + "add/")
    page.click("[data-editor-tab=json]")
    page.fill("#id_recipe_json", json.dumps({**recipe, "blink": True}))
    page.click("[data-editor-tab=form]")
    assert "no field for: blink" in page.locator("[data-json-note]").inner_text()
    assert page.input_value("#id_size_preset") == "1080x1920" and page.input_value("#id_format") == "webm"
    kinds = page.eval_on_selector_all("[data-clip-list] > [data-clip]", "rows => rows.map(r => r.dataset.kind)")
    assert kinds == ["video", "image", "title"]
    page.wait_for_function("() => document.querySelector('[data-clip] [data-picker-info]').textContent"
                           " === '2 s · 320×180'")
    assert row(page, 3).locator("[name$='-color']").input_value() == "#ff8800"
    assert not page.is_checked("#id_audio_loop")
    page.click("[data-editor-tab=json]")
    assert json.loads(page.input_value("#id_recipe_json")) == recipe
