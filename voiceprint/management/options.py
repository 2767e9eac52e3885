"""Command-line options shared by the management commands that read labelled audio."""

from argparse import ArgumentParser


def add_label_from(parser: ArgumentParser) -> None:
    """`--label-from auto|prefix|folder` (engine.evaluation.speaker_label)."""
    parser.add_argument(
        "--label-from",
        choices=["auto", "prefix", "folder"],
        default="auto",
        help="where the speaker label comes from (default: auto)",
    )
