"""What a benchmark report says about the machine it ran on."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as "1.00 0.50 0.25"."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
