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
