"""Render jobs: MoviePy renders of a JSON recipe, run by rq workers, followed live through the cache."""
