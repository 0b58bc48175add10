"""What to make: query parsing into a spec, engines, media views."""
