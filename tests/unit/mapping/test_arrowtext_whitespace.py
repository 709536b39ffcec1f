"""``arrowtext.WHITESPACE`` is exactly what ``str.strip()`` strips on this Python (it is written out, not computed)."""

from bloom_pipeline.mapping.arrowtext import WHITESPACE


def test_the_written_out_whitespace_is_every_code_point_str_isspace_accepts() -> None:
    assert set(WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}
    assert len(set(WHITESPACE)) == len(WHITESPACE)
    assert all(("x" + c + "x" + c).strip() == "x" + c + "x" for c in WHITESPACE)
