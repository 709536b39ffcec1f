"""A step beside the records' own writes (fund names, the people steps) whose API cannot be reached this run is
skipped, not fatal: the run goes on to the gifts, says why, and counts the step as failed."""

import pytest

from bloom_pipeline.clients.http import ApiUnavailableError
from bloom_pipeline.errors import DataError
from bloom_pipeline.mapping.loader import load_org
from bloom_pipeline.staging.store import StagingStore
from bloom_pipeline.sync.people.custom_fields import CustomFieldOutcome
from bloom_pipeline.sync.runner import OrgSync, RunOptions


@pytest.fixture
def org_sync(tmp_path):
    org = load_org("demo")
    return OrgSync(org, StagingStore.for_org("demo", data_dir=tmp_path), clients=None, options=RunOptions())


def test_an_unreachable_api_skips_the_step_and_counts_it_failed(org_sync):
    def step(ctx, con):
        raise ApiUnavailableError(503, "An error has occurred.", "GET", "/v2/customValues/Constituent", "bloomerang")

    outcome = org_sync.aside("custom fields", step, None, CustomFieldOutcome)
    assert outcome.failed == 1 and outcome.counts()["failed"] == 1
    assert "custom fields: not synced this run" in org_sync.report.message
    assert "customValues" in org_sync.report.message


def test_a_step_that_works_is_returned_as_it_is_and_other_errors_still_stop_the_run(org_sync):
    done = CustomFieldOutcome(to_bloomerang=2)
    assert org_sync.aside("custom fields", lambda ctx, con: done, None, CustomFieldOutcome) is done
    assert org_sync.report.message is None

    def broken(ctx, con):
        raise DataError("a bug is not an outage")

    with pytest.raises(DataError):
        org_sync.aside("custom fields", broken, None, CustomFieldOutcome)
