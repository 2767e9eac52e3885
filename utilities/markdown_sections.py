"""Reports that share one markdown file, each rewriting only its own section.

docs/BENCHMARKS.md holds several benchmarks' tables (`make bench`, `make bench-scale`,
`make bench-load`); each run replaces the text between its pair of HTML comments
(`<!-- begin NAME -->` ... `<!-- end NAME -->`) and leaves the others alone. A section not
yet in the file is appended.
"""

from __future__ import annotations

import re
from pathlib import Path


def replace_section(path: Path, name: str, text: str) -> None:
    """Write `text` as section `name` of the markdown file at `path` (created if missing)."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current, count=1)
    else:
        updated = (current.rstrip() + "\n\n" if current.strip() else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated, encoding="utf-8")
