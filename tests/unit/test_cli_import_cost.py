"""``bloom-pipeline --help`` (and every command's import) loads neither Dagster nor pandas.

A quiet night run from the CLI paid ~2 s of imports before its first request; the command index
(``bloom_pipeline/cli.py``) imports every command module, so each keeps its heavy imports inside the
commands that need them.
"""

from __future__ import annotations

import subprocess
import sys


def test_cli_index_imports_no_dagster_or_pandas() -> None:
    code = ("import sys, bloom_pipeline.cli; "
            "print(sorted(m for m in ('dagster', 'pandas', 'pandera', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
