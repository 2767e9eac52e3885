from utilities.markdown_sections import replace_section


def test_a_section_is_appended_then_replaced_leaving_the_others(tmp_path):
    report = tmp_path / "BENCH.md"
    report.write_text("# Title\n\nintro\n")

    replace_section(report, "scale", "first")
    replace_section(report, "load", "other")
    replace_section(report, "scale", "second")

    text = report.read_text()
    assert text.startswith("# Title\n\nintro\n")
    assert "first" not in text
    assert text.count("<!-- begin scale -->\nsecond\n<!-- end scale -->") == 1
    assert "<!-- begin load -->\nother\n<!-- end load -->" in text
    assert text.index("second") < text.index("other")  # kept in place, not moved to the end


def test_a_missing_file_is_created(tmp_path):
    report = tmp_path / "docs" / "BENCH.md"
    replace_section(report, "engines", "table")
    assert report.read_text() == "<!-- begin engines -->\ntable\n<!-- end engines -->\n"
