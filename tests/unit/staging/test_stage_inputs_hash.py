"""The key of what the staging step may carry over (``staging/stage_inputs.py``): the org's resolved mapping
and the code. An edit of the org's YAML or of the package's defaults changes it; a comment does not."""

import shutil
from pathlib import Path

from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.staging import stage_inputs

REPO = Path(__file__).resolve().parents[3]


def _hash(root: Path) -> str:
    return stage_inputs.mapping_hash(load_org("demo", mappings_dir=root))


def test_the_mapping_hash_follows_the_resolved_mapping(tmp_path):
    root = tmp_path / "mappings"
    shutil.copytree(REPO / "mappings", root)
    before = _hash(root)
    assert _hash(root) == before  # the same mapping, the same key
    demo = root / "orgs" / "demo.yaml"
    demo.write_text(demo.read_text() + "\n# a comment changes nothing a record is mapped with\n")
    assert _hash(root) == before
    text = demo.read_text()
    demo.write_text(text.replace("timezone: America/Denver", "timezone: America/Chicago"))
    assert _hash(root) != before  # the org's YAML
    demo.write_text(text)
    assert _hash(root) == before
    defaults = root / "defaults" / "wegive.yaml"
    original = defaults.read_text()
    assert "FNU" in original
    defaults.write_text(original.replace("FNU", "Unknown"))
    assert _hash(root) != before  # the defaults it extends


def test_record_hashes_read_the_record_as_stored():
    a, b = stage_inputs.record_hashes([{"id": 1, "name": "Ada"}, {"name": "Ada", "id": 1}])
    (c,) = stage_inputs.record_hashes([{"id": 1, "name": "Ada "}])
    assert a == b != c  # key order is not content; a trailing space is


def test_a_remembered_verdict_holds_only_for_the_same_record_and_mapping(tmp_path):
    """``stage_verdicts``: the quarantine rows a record gave are kept as the mapping gave them (list reasons,
    raw text, a missing field as None) and trusted only while the record's hash and the mapping hash hold; a
    record the mapping code crashed on is never remembered; a full scan forgets records no longer received."""
    import pandas as pd

    from bloom_pipeline.staging.store import StagingStore

    store = StagingStore(tmp_path / "demo_staging.duckdb", org="demo")
    rejected = pd.DataFrame({"source_id": ["7", "9"], "kind": ["invalid", "invalid"],
                             "errors": [["FullName: required"], ["could not be mapped (ValueError)"]],
                             "raw": ['{"id": 7}', '{"id": 9}']})
    fields = pd.DataFrame({"source_id": ["8"], "kind": ["field"], "field": ["PrimaryEmail.Value"],
                           "value": ["a@@b"], "errors": [["not a valid email address"]], "raw": ['{"id": 8}'],
                           "extra": [float("nan")]})
    judged = stage_inputs.verdict_rows([rejected, fields])
    assert judged["8"] == [{"kind": "field", "field": "PrimaryEmail.Value", "value": "a@@b",
                            "errors": ["not a valid email address"], "raw": '{"id": 8}'}]
    assert judged["7"] == [{"kind": "invalid", "errors": ["FullName: required"], "raw": '{"id": 7}'}]
    hashes = {"7": "h7", "8": "h8", "9": "h9"}
    mapped = pd.DataFrame({"source_id": ["8"], "payload_hash": ["p8"], "constituent_type": ["Individual"]})
    stage_inputs.write_changes(store, "constituents", mapped.iloc[0:0], source="wegive", source_entity="donors",
                               run_id="r1", unchanged=set(), full_scan=False, mapping="m1", record_hash=hashes,
                               uncached={"9"}, judged=judged)
    now = stage_inputs.verdicts(store, "wegive", "donors", "m1", hashes)
    assert set(now) == {"7", "8"}, "the crashed record is not remembered"
    assert now["7"].holds and not now["7"].staged and now["7"].rows[0]["errors"] == ["FullName: required"]
    assert not now["8"].staged  # no staged row was written for it in this call
    changed = stage_inputs.verdicts(store, "wegive", "donors", "m1", {**hashes, "7": "other"})
    assert not changed["7"].holds and changed["7"].rows == [] and changed["8"].holds
    assert not any(v.holds for v in stage_inputs.verdicts(store, "wegive", "donors", "m2", hashes).values())
    stage_inputs.write_changes(store, "constituents", mapped.iloc[0:0], source="wegive", source_entity="donors",
                               run_id="r2", unchanged=set(), full_scan=True, mapping="m1", record_hash=hashes,
                               uncached=set(), judged={}, kept={"8"})
    assert set(stage_inputs.verdicts(store, "wegive", "donors", "m1", hashes)) == {"8"}
