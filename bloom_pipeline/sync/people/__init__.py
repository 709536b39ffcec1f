"""People beyond the contact fields: communication preferences (``communication``), pull creates into WeGive
(``wegive_creates``), Handbid event participation as interactions (``events``), and later custom fields and a
record's lifecycle. Each module is one sync step the runner calls after the constituents are written."""

from bloom_pipeline.sync.people.communication import CommunicationOutcome, sync_communication

__all__ = ["CommunicationOutcome", "sync_communication"]
