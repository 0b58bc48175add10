"""Render jobs: MoviePy renders of a JSON recipe, run by rq workers, followed live through the cache.

The row (``models``) is the source of truth; the cache holds what a reader sees right now.
Read it in the order a render lives:

    recipes      the recipe checked and normalised before anything is queued
    lifecycle    start, cancel, settle the lost ones, read (web side)
    job          the rq job in the worker: claim, heartbeat, render, clean up
    worker       RenderWorker, every ``manage.py rqworker``: waits through Redis outages, sees a dead horse
    recovery     renders whose worker or rq job is gone: queued again once, or failed with a reason
    movie        the MoviePy composition; knows nothing of queues, HTTP or the cache
    progress     the one writer of the live snapshot and its event ids; the proglog logger
    transitions  the one way a row changes state (conditional UPDATE, then publish)
    api          the HTTP API (with Server-Sent Events)
    admin        the admin: the editor (forms), the media picker (picker), what a render page shows (display)
    conf, errors, checks, redis_queue   RENDER_* defaults, refusals, system checks, the rq queue and enqueue

The Django app is still ``transforms`` (its migrations, admin URLs and templates):
``transforms/models.py`` and ``transforms/admin.py`` re-export ``models`` and ``admin``.
"""
