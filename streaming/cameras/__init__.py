"""MJPEG cameras: one capture per camera for the whole deployment, fanned out to every viewer.

    conf.py           the CAMERAS* settings: one table of defaults
    sources.py        where frames come from (Pillow-drawn, or ffmpeg writing MJPEG to a pipe)
    jpeg_splitter.py  cuts a byte stream into JPEG frames on SOI/EOI markers, no re-encoding
    registry.py       the CAMERAS setting, parsed into named cameras
    checks.py         system checks: a bad CAMERAS entry fails at start-up
    bus.py            the Redis side: one client per process, keys, messages, lease, viewer counts
    producer.py       the one capture per camera, run under a Redis lease, publishing frames
    fanout.py         inside one worker: one reader per camera, one wake-up event per viewer
    mjpeg.py          the multipart/x-mixed-replace body (all framing in one place)
    errors.py         what the views refuse with (404, 400, 503 + Retry-After), as HttpErrors
    viewing.py        becoming a viewer: stream slots, the first frame, the send timeout
    views.py          the pages, the stream, the snapshot, the status JSON
"""
