"""People beyond the contact fields: communication preferences (``communication``), the org's custom fields
(``custom_fields``), pull creates into WeGive (``wegive_creates``), Handbid event participation as interactions
(``events``), and a record's lifecycle. Each module is one sync step the runner calls after the constituents
are written."""

from bloom_pipeline.sync.people.communication import CommunicationOutcome, sync_communication
from bloom_pipeline.sync.people.custom_fields import CustomFieldOutcome, sync_custom_fields

__all__ = ["CommunicationOutcome", "CustomFieldOutcome", "sync_communication", "sync_custom_fields"]
