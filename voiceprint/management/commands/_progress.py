"""What the bulk commands print while their progress bar runs.

The leading underscore keeps Django from listing this module as a command.
"""

from collections.abc import Callable

from django.core.management.base import OutputWrapper
from tqdm import tqdm


def note_writer(stdout: OutputWrapper) -> Callable[[str], None]:
    """A function printing one line on `stdout` above the progress bars, not through them."""

    def write(line: str) -> None:
        with tqdm.external_write_mode():
            stdout.write(line)

    return write
