"""Render jobs in-process: recipe validation, the API against a real Redis, a real rq SimpleWorker
running MoviePy, SSE framing, and Redis being down. The tests of the model, the API and the admin
take the ``database`` fixture: each runs on SQLite and again on PostgreSQL. Renders the queue lost
are in test_render_recovery.py; the multi-process cases in test_renders_live.py and
test_render_faults.py.
"""

from __future__ import annotations

import os

import pytest

from streaming.sse import EventStream
from tests.render_helpers import TOKEN, admin_form, closed_port_url, ffmpeg_processes, ffprobe, run_worker, small_recipe
from transforms.renders import lifecycle, redis_queue
from transforms.renders.job import on_render_failure, work_dir
from transforms.renders.models import RenderJob
from transforms.renders.recipes import InvalidRecipe, validate_recipe

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


# --- recipes --------------------------------------------------------------------------

VALID = [
    ({"clips": [{"title": "x"}]}, {"size": [1280, 720], "fps": 24, "format": "mp4", "crossfade": 0.0}),
    ({"size": [320, 180], "fps": 12, "format": "webm", "clips": [{"image": "photo.jpg", "duration": 2}]},
     {"size": [320, 180], "fps": 12, "format": "webm"}),
    ({"clips": [{"video": "clips/intro.mp4"}], "audio": {"source": "music.mp3"}}, {"audio": {
        "source": "music.mp3", "volume": 1.0, "loop": True, "start": 0.0}}),
]

INVALID = [
    ({"clips": [{"video": "nope.mp4"}]}, "clips[0].video"),
    ({"clips": [{"video": "../etc/passwd"}]}, "clips[0].video"),
    ({"clips": [{"image": "/etc/hostname"}]}, "clips[0].image"),
    ({"clips": [{"image": "music.mp3"}]}, "clips[0].image"),
    ({"clips": [{"title": "x", "duration": -1}]}, "clips[0].duration"),
    ({"clips": [{"video": "clips/intro.mp4", "start": 2, "end": 1}]}, "clips[0].end"),
    ({"clips": [{"video": "clips/intro.mp4", "end": 5}]}, "clips[0].end"),  # the clip lasts 2 s
    ({"clips": [{"video": "clips/intro.mp4", "start": 2.5}]}, "clips[0].start"),
    ({"clips": [{"video": "music.mp3"}]}, "clips[0].video"),  # no picture
    ({"clips": [{"title": "x"}], "audio": {"source": "photo.jpg"}}, "audio.source"),
    ({"size": [100000, 100000], "clips": [{"title": "x"}]}, "size"),
    ({"size": [321, 180], "clips": [{"title": "x"}]}, "size"),
    ({"fps": 0, "clips": [{"title": "x"}]}, "fps"),
    ({"format": "avi", "clips": [{"title": "x"}]}, "format"),
    ({"clips": [{"title": "x"}], "colour": 1}, "colour"),
    ({"clips": [{"title": "x", "blink": True}]}, "clips[0].blink"),
    ({"clips": [{"title": "x", "image": "photo.jpg"}]}, "clips[0]"),
    ({"clips": []}, "clips"),
    ({"clips": [{"title": "x", "duration": 300}] * 3}, "clips"),
    ({"clips": [{"title": "x", "duration": 1}], "crossfade": 2}, "crossfade"),
    ({"clips": [{"title": "x", "color": "red"}]}, "clips[0].color"),
    ({"clips": [{"title": "x"}], "audio": {"source": "music.mp3", "volume": -1}}, "audio.volume"),
    ({"clips": [{"title": "x"}], "audio": {"file": "music.mp3"}}, "audio.file"),
    ([1, 2], "recipe"),
]


@pytest.mark.parametrize(("recipe", "expected"), VALID)
def test_valid_recipes_are_normalised(sources, recipe, expected):
    normalised = validate_recipe(recipe)
    for key, value in expected.items():
        assert normalised[key] == value


@pytest.mark.parametrize(("recipe", "field"), INVALID)
def test_invalid_recipes_name_the_field(sources, recipe, field):
    with pytest.raises(InvalidRecipe) as caught:
        validate_recipe(recipe)
    assert field in caught.value.fields, caught.value.fields


def test_whole_video_clips_count_towards_the_length_limit(sources, settings):
    from transforms.renders.recipes import planned_seconds

    recipe = {"clips": [{"video": "clips/intro.mp4", "start": 0.5}, {"title": "x", "duration": 2}], "crossfade": 0.5}
    assert planned_seconds(validate_recipe(recipe)) == pytest.approx(3.0, abs=0.05)
    settings.RENDER_MAX_SECONDS = 2.5
    with pytest.raises(InvalidRecipe) as caught:
        validate_recipe(recipe)
    assert "would last 3" in caught.value.fields["clips"][0]


def test_symlink_out_of_media_root_is_refused(sources, tmp_path):
    outside = tmp_path / "outside.jpg"
    outside.write_bytes((sources / "photo.jpg").read_bytes())
    os.symlink(outside, sources / "link.jpg")
    with pytest.raises(InvalidRecipe) as caught:
        validate_recipe({"clips": [{"image": "link.jpg"}]})
    assert "clips[0].image" in caught.value.fields


# --- API and worker in-process ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_bad_recipe_is_400_with_field_errors_and_nothing_is_queued(database, client, sources, rq_redis):
    response = client.post("/api/renders/", {"clips": [{"video": "../secret.mp4"}, {"title": "t", "duration": -2}],
                                             "size": [9, 9], "extra": 1}, content_type="application/json", **AUTH)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_recipe"
    assert {"clips[0].video", "clips[1].duration", "size", "extra"} <= set(body["fields"])
    assert client.post("/api/renders/", b"{not json", content_type="application/json", **AUTH).status_code == 400
    assert RenderJob.objects.count() == 0
    assert redis_queue.render_queue().count == 0


@pytest.mark.django_db(transaction=True)
def test_api_needs_staff_or_token(database, client, sources, rq_redis, django_user_model):
    assert client.post("/api/renders/", small_recipe(), content_type="application/json").status_code == 401
    bad = {"HTTP_AUTHORIZATION": "Bearer wrong"}
    assert client.post("/api/renders/", small_recipe(), content_type="application/json", **bad).status_code == 401
    user = django_user_model.objects.create_user("plain", password="pw")
    client.force_login(user)
    assert client.post("/api/renders/", small_recipe(), content_type="application/json").status_code == 401
    user.is_staff = True
    user.save()
    assert client.post("/api/renders/", small_recipe(), content_type="application/json").status_code == 202
    assert RenderJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_render_end_to_end_with_a_simple_worker(database, client, sources, rq_redis):
    response = client.post("/api/renders/", small_recipe(), content_type="application/json", **AUTH)
    assert response.status_code == 202, response.content
    task = response.json()
    assert (task["state"], task["status"]) == (0, "queued")
    status_url = response["Location"]
    assert client.get(status_url, **AUTH).json()["status"] == "queued"

    run_worker()
    assert ffmpeg_processes(os.getpid()) == []

    done = client.get(status_url, **AUTH).json()
    assert (done["state"], done["status"], done["progress"], done["error"]) == (1, "complete", 100.0, None), done
    assert len(done["videos"]) == 1
    name = done["videos"][0].split("/", 3)[3]
    output = sources / name
    probe = ffprobe(output)
    assert 2.2 <= float(probe["format"]["duration"]) <= 3.0
    video = [s for s in probe["streams"] if s["codec_type"] == "video"][0]
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 180)
    assert [s["codec_name"] for s in probe["streams"] if s["codec_type"] == "audio"] == ["aac"]
    # Served through the normal media path, with ranges.
    ranged = client.get("/" + name, HTTP_RANGE="bytes=0-99")
    assert ranged.status_code in (200, 206)
    assert b"".join(ranged.streaming_content)[4:8] == b"ftyp"
    # Nothing left but the output: no work dir, no MoviePy temp audio.
    leftovers = [p.name for p in (sources / "renders").rglob("*") if p.is_file()]
    assert leftovers == [output.name]
    row = RenderJob.objects.get()
    assert (row.status, row.progress, row.attempts, row.output) == ("complete", 100.0, 1, name)


@pytest.mark.django_db(transaction=True)
def test_webm_render(client, sources, rq_redis):
    recipe = {"size": [320, 180], "fps": 12, "format": "webm", "clips": [{"title": "webm", "duration": 1}]}
    response = client.post("/api/renders/", recipe, content_type="application/json", **AUTH)
    run_worker()
    done = client.get(response["Location"], **AUTH).json()
    assert done["status"] == "complete", done
    probe = ffprobe(sources / done["videos"][0].split("/", 3)[3])
    assert [s["codec_name"] for s in probe["streams"]] == ["vp9"]


@pytest.mark.django_db(transaction=True)
def test_a_failing_render_ends_failed_with_reason_and_no_partial_files(database, client, sources, rq_redis):
    response = client.post("/api/renders/", small_recipe(), content_type="application/json", **AUTH)
    (sources / "clips" / "intro.mp4").write_bytes(b"not a video any more")
    run_worker()
    done = client.get(response["Location"], **AUTH).json()
    assert (done["state"], done["status"]) == (-1, "failed")
    assert "during starting" in done["error"]
    assert [p for p in (sources / "renders").rglob("*") if p.is_file()] == []


@pytest.mark.django_db(transaction=True)
def test_cancel_while_queued_and_retry(database, client, sources, rq_redis):
    response = client.post("/api/renders/", small_recipe(), content_type="application/json", **AUTH)
    task_id = response.json()["task_id"]
    canceled = client.post(f"/api/renders/{task_id}/cancel", **AUTH)
    assert canceled.status_code == 202
    assert (canceled.json()["status"], canceled.json()["state"]) == ("canceled", -1)
    assert client.post(f"/api/renders/{task_id}/cancel", **AUTH).status_code == 409
    run_worker()  # the canceled rq job does not run
    assert RenderJob.objects.get().status == "canceled"
    lifecycle.start(RenderJob.objects.get())
    run_worker()
    assert client.get(f"/api/renders/{task_id}", **AUTH).json()["status"] == "complete"
    assert RenderJob.objects.get().attempts == 1


@pytest.mark.django_db(transaction=True)
def test_unknown_render_is_404(database, client, rq_redis):
    assert client.get("/api/renders/00000000-0000-0000-0000-000000000000", **AUTH).status_code == 404
    assert client.get("/api/renders/not-a-uuid", **AUTH).status_code == 404


# --- Redis down ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_redis_down_is_503_on_submit_and_an_error_in_the_admin(database, client, sources, settings, admin_client):
    url = closed_port_url()
    settings.RQ_QUEUES = {name: {"URL": url} for name in ("default", settings.RENDER_QUEUE)}
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
    settings.RENDER_API_TOKEN = TOKEN
    response = client.post("/api/renders/", small_recipe(), content_type="application/json", **AUTH)
    assert response.status_code == 503
    assert response.json()["error"] == "queue_unavailable"
    assert response["Retry-After"]
    assert RenderJob.objects.count() == 0

    added = admin_client.post("/admin/transforms/renderjob/add/", admin_form([{"title": "x", "duration": 1}]),
                              follow=True)
    assert added.status_code == 200
    assert "was not started" in added.content.decode()
    row = RenderJob.objects.get()
    assert (row.status, row.started) == ("queued", False)
    listing = admin_client.get("/admin/transforms/renderjob/")
    assert listing.status_code == 200
    assert "Redis is unreachable" in listing.content.decode()
    assert "not started" in listing.content.decode()
    change = admin_client.get(f"/admin/transforms/renderjob/{row.pk}/change/")
    assert change.status_code == 200
    assert client.get(f"/api/renders/{row.pk}", **AUTH).status_code == 200


# --- Server-Sent Events ----------------------------------------------------------------------


def test_sse_framing():
    stream = EventStream(heartbeat_seconds=15)
    assert stream.frame({"a": 1}, id=7, event="status") == b'id: 7\nevent: status\ndata: {"a":1}\n\n'
    assert stream.frame("two\nlines") == b"data: two\ndata: lines\n\n"
    assert stream.frame(retry_ms=2000, comment="hi") == b": hi\nretry: 2000\n\n"
    assert stream.heartbeat() == b": heartbeat\n\n"
    with pytest.raises(ValueError):
        stream.frame("x", id="a\nb")


def parse_events(raw: bytes) -> list[dict]:
    events = []
    for block in raw.decode().split("\n\n"):
        fields: dict = {}
        for line in block.splitlines():
            name, _, value = line.partition(":")
            fields.setdefault(name or "comment", []).append(value.removeprefix(" "))
        if fields:
            events.append(fields)
    return events


@pytest.mark.django_db(transaction=True)
def test_events_resume_and_stop_after_the_final_state_without_gzip(database, client, sources, rq_redis, settings):
    settings.MIDDLEWARE = ["django.middleware.gzip.GZipMiddleware", *settings.MIDDLEWARE]
    response = client.post("/api/renders/", small_recipe(), content_type="application/json", **AUTH)
    task_id = response.json()["task_id"]
    run_worker()
    stream = client.get(f"/api/renders/{task_id}/events", HTTP_ACCEPT_ENCODING="gzip", **AUTH)
    assert stream["Content-Type"].startswith("text/event-stream")
    assert stream["Cache-Control"] == "no-cache" and stream["X-Accel-Buffering"] == "no"
    assert stream["Content-Encoding"] == "identity"
    events = parse_events(b"".join(stream.streaming_content))
    assert events[0]["retry"] == ["2000"]
    final = [e for e in events if "data" in e]
    assert len(final) == 1 and '"status":"complete"' in final[0]["data"][0]
    last_id = final[0]["id"][0]
    again = client.get(f"/api/renders/{task_id}/events", HTTP_LAST_EVENT_ID=last_id, **AUTH)
    assert again.status_code == 204
    earlier = client.get(f"/api/renders/{task_id}/events", HTTP_LAST_EVENT_ID=str(int(last_id) - 1), **AUTH)
    assert '"status":"complete"' in b"".join(earlier.streaming_content).decode()


def test_no_ffmpeg_left_in_this_process():
    assert ffmpeg_processes(os.getpid()) == []


@pytest.mark.django_db(transaction=True)
def test_cancel_during_the_audio_pass_leaves_no_ffmpeg_and_no_temp_audio(client, sources, rq_redis):
    """In the audio pass MoviePy's ffmpeg outlives the abort until collected: the job must reap it."""
    import threading
    import time

    from django.core.cache import cache

    from transforms.renders.progress import cancel_key, read_snapshot

    recipe = {"size": [320, 180], "fps": 12, "clips": [{"title": "long", "duration": 120}],
              "audio": {"source": "music.mp3", "loop": True}}
    task_id = client.post("/api/renders/", recipe, content_type="application/json", **AUTH).json()["task_id"]
    stages: list[str] = []

    def cancel_in_audio_pass() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            snapshot = read_snapshot(task_id) or {}
            if snapshot.get("stage") == "audio":
                stages.append("audio")
                cache.set(cancel_key(task_id), 1)
                return
            if snapshot.get("status") in ("complete", "failed", "canceled"):
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=cancel_in_audio_pass)
    watcher.start()
    run_worker()
    watcher.join()
    assert stages == ["audio"]
    row = RenderJob.objects.get()
    assert row.status == "canceled" and "during audio" in row.error, row.error
    assert ffmpeg_processes(os.getpid()) == []
    assert [p for p in (sources / "renders").rglob("*") if p.is_file()] == []


@pytest.mark.django_db(transaction=True)
def test_job_timeout_ends_failed_with_the_stage(client, sources, rq_redis, settings):
    settings.RENDER_JOB_TIMEOUT = 1
    recipe = {"size": [320, 180], "fps": 12, "clips": [{"image": "photo.jpg", "duration": 120, "zoom": 1.5}]}
    task_id = client.post("/api/renders/", recipe, content_type="application/json", **AUTH).json()["task_id"]
    run_worker()
    done = client.get(f"/api/renders/{task_id}", **AUTH).json()
    assert done["status"] == "failed" and done["error"].startswith("JobTimeoutException during"), done
    assert ffmpeg_processes(os.getpid()) == []
    assert [p for p in (sources / "renders").rglob("*") if p.is_file()] == []


@pytest.mark.django_db(transaction=True)
def test_rq_abandoned_job_callback_marks_the_render_failed(database, sources, rq_redis):
    """rq's maintenance calls on_failure with AbandonedJobError for a job whose worker vanished."""
    from rq.exceptions import AbandonedJobError
    from rq.job import Job

    render = lifecycle.start(RenderJob.objects.create(recipe=validate_recipe({"clips": [{"title": "x"}]})))
    RenderJob.objects.filter(pk=render.pk).update(status="processing")
    work_dir(render.pk).mkdir(parents=True)
    (work_dir(render.pk) / "partial.mp4").write_bytes(b"partial")
    job = Job.fetch(render.rq_job_id, connection=redis_queue.redis_connection())
    on_render_failure(job, job.connection, AbandonedJobError, AbandonedJobError(), None)
    render.refresh_from_db()
    assert render.status == "failed" and "abandoned" in render.error
    assert not work_dir(render.pk).exists()


def test_progress_logger_weights_throttles_and_checkpoints(rq_redis):
    """Fed MoviePy's two bars with a fake clock: one weighted percent, few writes, a row copy per tenth."""
    from types import SimpleNamespace

    from django.core.cache import cache

    from transforms.renders.progress import RenderCanceled, RenderProgress, cancel_key, read_snapshot

    now = [0.0]
    checkpoints: list[tuple[float, str]] = []
    logger = RenderProgress("unit", on_checkpoint=lambda p, s: checkpoints.append((p, s)), interval=0.25,
                            clock=lambda: now[0])
    logger.set_plan(SimpleNamespace(has_audio=True))
    seen: list[float] = []
    logger.bars_callback("chunk", "total", 100)
    for index in range(100):  # the audio pass: 1 s
        now[0] += 0.01
        logger.bars_callback("chunk", "index", index)
        seen.append(read_snapshot("unit")["progress"])
    assert logger.percent <= 10.0
    logger.bars_callback("frame_index", "total", 400)
    logger.bars_callback("frame_index", "index", 0)  # a stage change is always written
    assert 10.0 <= read_snapshot("unit")["progress"] < 11
    for index in range(1, 400):  # the video pass: 4 s at 100 frames/s
        now[0] += 0.01
        logger.bars_callback("frame_index", "index", index)
        seen.append(read_snapshot("unit")["progress"])
    assert seen == sorted(seen)
    assert logger.percent == 99.0  # 100 only once the file is in place
    assert logger.writes <= 5 / 0.25 + 3  # at most one write per interval, plus stage changes
    assert [int(p // 10) for p, _ in checkpoints] == list(range(1, 10))
    snapshot = read_snapshot("unit")
    assert snapshot["stage"] == "video" and snapshot["fps"] == pytest.approx(100, rel=0.05)
    cache.set(cancel_key("unit"), 1)
    now[0] += 1
    with pytest.raises(RenderCanceled):
        logger.bars_callback("frame_index", "index", 399)


@pytest.mark.django_db(transaction=True)
def test_retries_from_settings(database, client, sources, rq_redis, settings):
    settings.RENDER_RETRIES = 1
    settings.RENDER_RETRY_INTERVAL = 0
    response = client.post("/api/renders/", small_recipe(), content_type="application/json", **AUTH)
    (sources / "clips" / "intro.mp4").write_bytes(b"broken after submit")
    run_worker()
    row = RenderJob.objects.get()
    assert (row.status, row.attempts) == ("failed", 2), (row.status, row.attempts, row.error)
    assert client.get(response["Location"], **AUTH).json()["state"] == -1
