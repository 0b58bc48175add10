"""Inspect, empty or pre-fill the result cache.

    manage.py transforms_cache --stats
    manage.py transforms_cache --purge
    manage.py transforms_cache --warm 'size=300x200,size=x120&fit=cover' [PATHS ...]

``--warm`` renders every image under PATHS (relative to MEDIA_ROOT; default: all
of it) for every spec, in a bounded pool as wide as the machine has cores:
processes for the in-process Pillow engine (it holds the GIL part of the time),
threads for tool engines (the work happens in the subprocesses). Ctrl-C stops
handing out work, lets the renders in flight finish (each is written to a temp
name and renamed, so none is left half-written) and reports what was done.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections import defaultdict
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from streaming.errors import HttpError
from transforms.cache import result_cache
from transforms.conf import conf
from transforms.engines import ENGINES
from transforms.engines.base import CommandEngine
from transforms.warm import media_files, parse_specs, warm_one


def ignore_interrupts() -> None:
    """Pool processes leave Ctrl-C to the parent, which winds the pool down in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Command(BaseCommand):
    help = "Show the result cache's size, empty it, or pre-render images into it."

    def add_arguments(self, parser: CommandParser) -> None:
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--stats", action="store_true", help="entries, bytes, bound, temporary files")
        action.add_argument("--purge", action="store_true", help="remove every entry")
        action.add_argument("--warm", metavar="SPECS", help="comma-separated queries, e.g. 'size=300x200,size=x120'")
        parser.add_argument("paths", nargs="*", help="files or folders under MEDIA_ROOT (default: all)")
        parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="pool size (default: cores)")

    def handle(self, *args, **options) -> None:
        cache = result_cache()
        if cache is None:
            raise CommandError("the result cache is turned off (TRANSFORMS_CACHE)")
        if options["stats"]:
            for name, value in {"folder": str(cache.root), **cache.stats()}.items():
                self.stdout.write(f"{name}: {value}")
        elif options["purge"]:
            self.stdout.write(f"removed {cache.purge()} file(s) from {cache.root}")
        else:
            self.warm(options["warm"], options["paths"], max(1, options["jobs"]))

    def warm(self, raw_specs: str, paths: list[str], jobs: int) -> None:
        try:
            specs = parse_specs(raw_specs)
        except HttpError as exc:
            raise CommandError(f"bad spec: {exc.message}") from None
        if not specs:
            raise CommandError("no spec given")
        names = list(media_files(paths))
        in_process = [s for s in specs if not isinstance(ENGINES.get(s.engine or conf.DEFAULT_ENGINE), CommandEngine)]
        with_tools = [s for s in specs if s not in in_process]
        outcomes: dict[str, int] = defaultdict(int)
        failures: dict[str, list[str]] = defaultdict(list)
        progress = tqdm(total=len(names) * len(specs), unit="render", file=sys.stderr, disable=None)
        interrupted = False
        try:
            for pool_class, group in ((ProcessPoolExecutor, in_process), (ThreadPoolExecutor, with_tools)):
                if not group or interrupted:
                    continue
                interrupted = self.run_pool(pool_class, jobs, names, group, progress, outcomes, failures)
        finally:
            progress.close()
        for name, reasons in sorted(failures.items()):
            self.stdout.write(f"failed: {name}: " + "; ".join(sorted(set(reasons))))
        summary = ", ".join(f"{count} {what}" for what, count in sorted(outcomes.items())) or "nothing to do"
        self.stdout.write(f"warm: {summary} ({len(names)} file(s) x {len(specs)} spec(s))")
        if interrupted:
            raise CommandError("interrupted: renders in flight were finished, nothing half-written", returncode=130)
        if failures:
            raise CommandError(f"{outcomes['failed']} render(s) failed")

    def run_pool(self, pool_class, jobs, names, specs, progress, outcomes, failures) -> bool:
        """Run one pool to the end; True when Ctrl-C stopped it."""
        kwargs = {}
        if pool_class is ProcessPoolExecutor:
            kwargs = {"initializer": ignore_interrupts, "mp_context": multiprocessing.get_context("fork")}
        pool: Executor = pool_class(max_workers=jobs, **kwargs)
        futures: dict[Future, tuple[str, str]] = {}
        counted: set[Future] = set()

        def count(future: Future) -> None:
            counted.add(future)
            outcome, detail = future.result()
            outcomes[outcome] += 1
            name, query = futures[future]
            if outcome == "failed":
                failures[name].append(f"{query}: {detail}")
            progress.update(1)

        try:
            for name in names:
                for spec in specs:
                    futures[pool.submit(warm_one, name, spec)] = (name, spec.canonical())
            for future in as_completed(futures):
                count(future)
        except KeyboardInterrupt:
            self.stderr.write("interrupted: finishing the renders in flight")
            pool.shutdown(wait=True, cancel_futures=True)
            for future in futures:
                if future not in counted and future.done() and not future.cancelled():
                    count(future)
            return True
        pool.shutdown(wait=True)
        return False
