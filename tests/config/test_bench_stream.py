"""config.bench_stream (`make bench-stream`) in miniature: the real server, two speakers, one
short stream at 4x real time; the section it writes."""

from __future__ import annotations

import re

import pytest

from config import bench_stream

pytestmark = pytest.mark.slow


def test_a_tiny_run_writes_the_stream_section(shared_audio, tmp_path, monkeypatch):
    for name, value in {"STREAM_SPEAKERS": "2", "PROBE_SECONDS": "3", "STREAM_SECONDS": "3",
                        "STREAM_LEVELS": "1", "STREAM_SPEED": "2"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("<!-- begin load -->\nkept\n<!-- end load -->\n")
    bench_stream.main(["--out", str(out), "--var-dir", str(tmp_path / "service")])
    text = out.read_text()
    assert "kept" in text  # the other sections stay
    section = text.split("<!-- begin stream -->")[1].split("<!-- end stream -->")[0]
    assert "(one stream, 2 utterances)" in section  # how many were right is the bench's
    assert re.search(r"[0-2]/2 utterances had one", section), section  # finding, not a test
    rows = [line for line in section.splitlines() if line.startswith("| 1 |")]
    assert len(rows) == 1, section
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    assert 0 < float(cells[4]) < 10, cells  # the final's lag p95, s (partials may be skipped
    assert cells[-1] in ("yes", "no"), cells  # on a busy machine: the stream is 2x real time)
