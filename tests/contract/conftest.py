"""Make the contract helpers importable for the tests in this folder (tests/ is not a package)."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
