"""bloom_pipeline: keep WeGive and Handbid donor data in sync with the Bloomerang CRM."""

__version__ = "0.1.0"
