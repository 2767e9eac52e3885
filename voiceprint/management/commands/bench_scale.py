"""`make bench-scale`: nearest-voice search at a million voices (voiceprint.scale_bench)."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.scratch_database import scratch_database
from engine.scale_distribution import ScaleDistributionError, scale_distribution_load
from utilities.markdown_sections import replace_section
from voiceprint.scale_bench import ScaleParams, report_markdown, scale_bench_run


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


class Command(BaseCommand):
    help = (
        "Load a big tenant of --voices voices, 1,000 small tenants and devices into a "
        "database of its own (created, migrated, dropped at the end unless --keep), drawn "
        "from the engine's fitted embedding distribution; build the HNSW index; measure "
        "p50/p95 latency and recall@1 against exact search per query type and ef_search, the "
        "build time, the row-by-row insert rate, the index size and the server's memory."
    )

    def add_arguments(self, parser):
        add = parser.add_argument
        add("--voices", type=int, default=20_000, help="voices of the big tenant")
        add("--small-tenants", type=int, default=1_000)
        add("--medium-tenants", default="1000,3000,10000", help="sizes, comma-separated")
        add("--devices", type=int, default=200, help="devices with four bound voices")
        add("--queries", type=int, default=200, help="probes per query type")
        add("--ef-search", default="40,100,200", help="hnsw.ef_search values to measure")
        add("--m", type=int, help="HNSW m (default: VOICEPRINT_HNSW_M)")
        add("--ef-construction", type=int, help="default: VOICEPRINT_HNSW_EF_CONSTRUCTION")
        add("--insert-sample", type=int, default=1_000, help="voices inserted row by row")
        add("--work-mem", default="4GB", help="maintenance_work_mem of the index build")
        add("--engine", default="ge2e", help="engine whose fitted distribution is used")
        add("--database", default="voiceprint_bench", help="scratch database name")
        add("--keep", action="store_true", help="keep the scratch database")
        add("--seed", type=int, default=0)
        add("--markdown", type=Path, help="write the table as the 'scale' section of this file")
        add("--no-progress", action="store_true")

    def handle(self, *args, **options):
        try:
            distribution = scale_distribution_load(options["engine"])
        except ScaleDistributionError as exc:
            raise CommandError(
                f"{exc}. The benchmark never falls back to isotropic vectors, "
                "on which an HNSW index's recall is nothing like real."
            ) from exc
        params = ScaleParams(
            voices=options["voices"],
            small_tenants=options["small_tenants"],
            medium_tenants=_ints(options["medium_tenants"]),
            devices=options["devices"],
            queries=options["queries"],
            ef_search=_ints(options["ef_search"]),
            m=options["m"],
            ef_construction=options["ef_construction"],
            insert_sample=min(options["insert_sample"], options["voices"] // 2),
            work_mem=options["work_mem"],
            seed=options["seed"],
        )
        if params.voices < 2 * max(params.queries, 1):
            raise CommandError("--voices must be at least twice --queries")
        started = time.perf_counter()

        def progress(message: str) -> None:
            if not options["no_progress"]:
                elapsed = time.perf_counter() - started
                self.stderr.write(f"[{elapsed:6.0f} s] {message}")

        progress(f"creating and migrating the scratch database {options['database']}")
        with scratch_database(options["database"], keep=options["keep"]):
            report = scale_bench_run(distribution, params, progress)
        text = report_markdown(report)
        self.stdout.write(text)
        if options["markdown"]:
            replace_section(options["markdown"], "scale", text)
            self.stdout.write(f"written to {options['markdown']} (section 'scale')")
