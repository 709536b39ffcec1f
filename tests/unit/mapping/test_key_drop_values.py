"""A dropped record key (``updated_at`` that is no time) shows the value the API sent, whatever the column's dtype.

Found with ``Sandbox(messy=True)``: a Handbid contact with ``dateUpdated`` of year 9999 (253402214400 epoch
seconds, past what a pandas timestamp holds) read alone — an incremental run reads just it — makes an int64
column, and its quarantine value was shown as the quoted text ``"253402214400"`` (a numpy integer is no JSON
type), while the same record read among others showed ``253402214400``.
"""

import pytest

from bloom_pipeline.mapping.compile import map_frame

from .conftest import CONTACT, record

YEAR_9999 = 253402214400


@pytest.mark.parametrize("others", [[], [record(CONTACT, id=502, dateUpdated="0000-00-00 00:00:00")],
                                    [record(CONTACT, id=503)]])
def test_an_epoch_past_the_timestamp_range_is_shown_as_the_number(org, others):
    result = map_frame(org, "handbid.contacts", [record(CONTACT, dateUpdated=YEAR_9999), *others])
    rows = result.fields[result.fields["source_id"] == "501"]
    assert rows[["field", "value"]].values.tolist() == [["source_updated_at", "253402214400"]]
    assert rows["errors"].iloc[0] == ["source_updated_at: '253402214400' is not a time; left out (from dateUpdated)"]
    assert set(result.mapped["source_id"]) == {"501", *(str(o["id"]) for o in others)}, "the contact is mapped"
