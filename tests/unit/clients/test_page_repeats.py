"""A paged list may serve a row again when records are inserted between two page reads: the unchanged
repeat is read once; a different record under the same id is never dropped (the mapping quarantines both)."""

from bloom_pipeline.clients.http import PageRepeats


def test_an_unchanged_repeat_is_read_once():
    pages = PageRepeats()
    row = {"id": 7, "amount": 500, "donor": {"id": 1}}
    assert not pages.is_repeat(row)
    assert pages.is_repeat({"donor": {"id": 1}, "amount": 500, "id": 7})  # key order does not matter
    assert pages.skipped == 1


def test_a_conflicting_record_under_the_same_id_is_passed_on():
    pages = PageRepeats()
    assert not pages.is_repeat({"id": 7, "amount": 500})
    assert not pages.is_repeat({"id": 7, "amount": 900})
    assert not pages.is_repeat({"id": "7", "amount": 500}), "a string id is another id in the source's JSON"
    assert pages.skipped == 0


def test_rows_without_a_usable_id_are_always_passed_on():
    pages = PageRepeats()
    for row in ({"amount": 1}, {"amount": 1}, {"id": None}, {"id": None}, {"id": {"x": 1}}, {"id": [1]}, "text"):
        assert not pages.is_repeat(row)
