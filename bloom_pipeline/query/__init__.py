"""``bloom-pipeline query``: SQL on an org's analyst snapshot with nothing but the package installed."""
