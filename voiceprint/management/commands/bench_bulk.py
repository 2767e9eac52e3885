"""`make bench-bulk`: bulk imports row by row vs on the fast path (voiceprint.bulk_bench)."""

from pathlib import Path

from django.core.management.base import BaseCommand

from core.scratch_database import scratch_database
from utilities.markdown_sections import replace_section
from voiceprint.bulk_bench import bulk_bench_markdown, bulk_bench_run


class Command(BaseCommand):
    help = (
        "Import VOICES random voices with the HNSW index kept row by row and on the fast "
        "path, ROUNDS times on a growing table, in a scratch database (dropped at the end); "
        "print the table, or write it as the 'bulk' section of --markdown."
    )

    def add_arguments(self, parser):
        parser.add_argument("--voices", type=int, default=20000)
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--database", default="voiceprint_bench_bulk")
        parser.add_argument("--markdown", type=Path, help="e.g. docs/BENCHMARKS.md")

    def handle(self, *args, voices: int, rounds: int, database: str, markdown, **options):
        with scratch_database(database):
            runs = bulk_bench_run(voices=voices, rounds=rounds, progress=self.stderr.write)
        text = bulk_bench_markdown(runs, voices=voices)
        if markdown:
            replace_section(markdown, "bulk", text)
        self.stdout.write(text)
