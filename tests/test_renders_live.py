"""Render jobs across real processes: gunicorn serving the API and the admin, real
``manage.py rqworker`` processes (no arguments: the README's command) running MoviePy, a
private redis-server, a database they share (a SQLite file; one test on PostgreSQL), a real
HTTP client reading the SSE stream, and headless Chromium on the admin page.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import RedisServer, children, wait_for, wait_until
from tests.render_helpers import ffmpeg_processes, ffprobe, long_recipe, small_recipe
from tests.render_stack import AUTH, FINAL, Stack, Workers, build_stack, horse_of, read_events


def no_files_under(path: Path) -> bool:
    return not path.exists() or not [p for p in path.rglob("*") if p.is_file()]


def test_progress_through_the_api_is_monotonic_and_ends_at_100(stack, start_worker):
    start_worker()
    task = stack.submit(long_recipe(10))
    seen: list[float] = []
    statuses: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = stack.status(task["task_id"])
        seen.append(status["progress"])
        statuses.append(status["status"])
        if status["status"] in FINAL:
            break
        time.sleep(0.05)
    assert statuses[-1] == "complete", stack.status(task["task_id"])
    assert seen == sorted(seen), seen
    assert seen[-1] == 100.0
    assert any(0 < value < 100 for value in seen), seen
    assert "processing" in statuses
    done = stack.status(task["task_id"])
    assert done["state"] == 1 and done["eta_seconds"] == 0
    video = requests.get(done["videos"][0], timeout=10)
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4"
    output = stack.media / "renders" / f"{task['task_id']}.mp4"
    assert output.read_bytes() == video.content
    probe = ffprobe(output)
    assert 9.5 <= float(probe["format"]["duration"]) <= 10.5
    assert no_files_under(stack.media / "renders" / ".work")


def test_sse_stream_over_gunicorn(stack, start_worker):
    import json

    task = stack.submit(small_recipe())  # no worker yet: the stream idles and must send heartbeats
    url = f"{stack.url}/api/renders/{task['task_id']}/events"
    started_worker = False
    events: list[dict] = []
    comments = 0
    with requests.get(url, headers={**AUTH, "Accept-Encoding": "gzip"}, stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        assert response.headers.get("Content-Encoding", "identity") == "identity"
        first = True
        for block in read_events(response):
            if first:
                assert block.get("retry") == ["2000"]
                first = False
            if "data" in block:
                events.append({"id": int(block["id"][0]), "event": block["event"][0],
                               **json.loads("\n".join(block["data"]))})
            elif "heartbeat" in block.get("comment", []):
                comments += 1
                if comments >= 2 and not started_worker:
                    start_worker()
                    started_worker = True
    assert comments >= 2
    ids = [event["id"] for event in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert events[0]["status"] == "queued"
    assert events[-1]["status"] == "complete" and events[-1]["progress"] == 100.0
    assert "processing" in {event["status"] for event in events}
    progress = [event["progress"] for event in events]
    assert progress == sorted(progress)

    # Resuming: after an id in the middle only newer events come; after the final one, 204 (stop).
    middle = events[len(events) // 2]["id"]
    with requests.get(url, headers={**AUTH, "Last-Event-ID": str(middle)}, stream=True, timeout=30) as again:
        resumed = [int(block["id"][0]) for block in read_events(again) if "data" in block]
    assert resumed and all(event_id > middle for event_id in resumed)
    final = requests.get(url, headers={**AUTH, "Last-Event-ID": str(events[-1]["id"])}, timeout=10)
    assert final.status_code == 204


def test_cancel_stops_a_running_render_and_its_ffmpeg(stack, start_worker):
    worker = start_worker()
    task = stack.submit(long_recipe(60))
    stack.wait_for(task["task_id"], lambda s: s["status"] == "processing" and s["stage"] == "video"
                   and s["progress"] > 3)
    assert ffmpeg_processes(worker.pid), "the render should have an ffmpeg running"
    asked = time.monotonic()
    response = requests.post(f"{stack.url}/api/renders/{task['task_id']}/cancel", headers=AUTH, timeout=10)
    assert response.status_code == 202
    done = stack.wait_for(task["task_id"], lambda s: s["status"] in FINAL, timeout=30)
    took = time.monotonic() - asked
    assert (done["status"], done["state"]) == ("canceled", -1), done
    assert done["progress"] < 100 and "canceled during video" in done["error"]
    deadline = time.monotonic() + 5
    while ffmpeg_processes(worker.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ffmpeg_processes(worker.pid) == []
    assert no_files_under(stack.media / "renders" / ".work")
    assert not (stack.media / "renders" / f"{task['task_id']}.mp4").exists()
    print(f"cancel took {took:.2f} s")
    # The worker lives on and takes the next job.
    again = stack.submit({"size": [320, 180], "fps": 12, "clips": [{"title": "after", "duration": 1}]})
    assert stack.wait_for(again["task_id"], lambda s: s["status"] in FINAL)["status"] == "complete"


def orphan_ffmpeg_for(task_id: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if task_id.encode() in cmdline.read() and b"ffmpeg" in open(f"/proc/{entry}/comm", "rb").read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_a_worker_killed_mid_render_ends_failed(stack, start_worker):
    worker = start_worker()
    task = stack.submit(long_recipe(60))
    stack.wait_for(task["task_id"], lambda s: s["status"] == "processing" and s["progress"] > 3)
    horses = [pid for pid in children(worker.pid) if pid not in ffmpeg_processes(worker.pid)]
    assert horses, "the forking worker should run the render in a work-horse"
    os.kill(worker.pid, signal.SIGKILL)
    for pid in horses:
        os.kill(pid, signal.SIGKILL)
    worker.wait()
    done = stack.wait_for(task["task_id"], lambda s: s["status"] in FINAL, timeout=30)
    assert (done["status"], done["state"]) == ("failed", -1), done
    assert "abandoned" in done["error"]
    assert no_files_under(stack.media / "renders" / ".work")
    assert not (stack.media / "renders" / f"{task['task_id']}.mp4").exists()
    deadline = time.monotonic() + 10  # the orphaned ffmpeg reads EOF on its pipe and exits
    while orphan_ffmpeg_for(task["task_id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert orphan_ffmpeg_for(task["task_id"]) == []


def test_admin_cancel_button_with_polling_fallback(stack, start_worker, page):
    """Without EventSource the page polls; its Cancel button stops the running render and the page says so."""
    start_worker()
    task = stack.submit(long_recipe(60))
    page.add_init_script("delete window.EventSource;")
    stack.log_in(page, f"/admin/transforms/renderjob/{task['task_id']}/change/")
    page.wait_for_function(
        "() => { const p = document.querySelector('[data-render-progress] progress');"
        " return p && p.value > 2 && p.value < 100; }", timeout=60000)
    assert page.locator("button.render-button-start").is_hidden()
    assert page.locator("button.render-button-retry").is_hidden()
    page.click("button.render-button-cancel")
    page.wait_for_url(f"**/admin/transforms/renderjob/{task['task_id']}/change/")
    page.wait_for_selector("[data-render-heading]:text-is('canceled')", timeout=30000)
    page.wait_for_selector("button.render-button-retry", state="visible")
    assert page.locator("button.render-button-cancel").is_hidden()
    done = stack.status(task["task_id"])
    assert done["status"] == "canceled" and "canceled during" in done["error"]


# --- on PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory, postgres_server) -> Iterator[Stack]:
    """The same deployment on the run's PostgreSQL (a database of its own)."""
    base = tmp_path_factory.mktemp("render-stack-pg")
    redis_server = RedisServer(base)
    built = build_stack(base, redis_server, postgres_server.create_database("render_stack"))
    yield built
    built.server.stop()
    redis_server.stop()


def test_on_postgresql_a_dead_work_horse_fails_its_render_within_2_s_and_the_worker_goes_on(pg_stack):
    workers = Workers(pg_stack)
    try:
        worker = workers.start()
        task = pg_stack.submit(long_recipe(120))
        pg_stack.wait_for(task["task_id"], lambda s: s["status"] == "processing" and s["progress"] > 3)
        horse = horse_of(worker)
        assert horse is not None, "the forking worker should run the render in a work horse"
        os.kill(horse, signal.SIGKILL)
        failed = wait_for(lambda: (s := pg_stack.status(task["task_id"]))["status"] == "failed" and s,
                          timeout=2, step=0.02)
        assert failed["state"] == -1
        assert "work horse running this render died (killed by SIGKILL)" in failed["error"], failed
        assert worker.poll() is None, "the worker itself lives on"
        assert no_files_under(pg_stack.media / "renders" / ".work")
        assert wait_until(lambda: orphan_ffmpeg_for(task["task_id"]) == [], timeout=10)
        # The worker's parent wrote that row, then forks the next horse: a clean connection each side.
        again = pg_stack.submit(small_recipe())
        done = pg_stack.wait_for(again["task_id"], lambda s: s["status"] in FINAL)
        assert done["status"] == "complete", done
        probe = ffprobe(pg_stack.media / "renders" / f"{again['task_id']}.mp4")
        assert 2.2 <= float(probe["format"]["duration"]) <= 3.0
        assert pg_stack.row(again["task_id"])["attempts"] == 1
        assert requests.get(done["videos"][0], timeout=10).content[4:8] == b"ftyp"
    finally:
        workers.stop_all()
