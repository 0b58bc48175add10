"""How bytes move: subprocess pipelines as response bodies, limits, fast paths."""
