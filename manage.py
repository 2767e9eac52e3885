#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    from utilities.env import EnvError

    try:
        execute_from_command_line(sys.argv)
    except EnvError as exc:  # a variable of the wrong type: the settings could not be read
        sys.exit(f"Configuration error: {exc}")


if __name__ == "__main__":
    main()
