"""The pure rules of communication preferences: an opt-out on either side wins, nothing is re-subscribed by the
sync, a pulled opt-out never escalates, and a second look at a settled pair writes nothing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bloom_pipeline.mapping.spec import CommunicationSettings
from bloom_pipeline.sync.people.communication import (
    Base,
    bloomerang_marks,
    decide,
    parse_do_not_contact,
    settings_body,
)

ALL = frozenset({"DoNotCall", "DoNotMail", "DoNotSolicit", "OptedOut"})
NONE: frozenset[str] = frozenset()
S = CommunicationSettings()


def both(flag, marks, base=None, settings=S):
    return decide(flag, frozenset(marks), base, settings, push=True, pull=True)


def test_the_default_maps_do_not_contact_to_every_restriction_and_the_email_opt_out() -> None:
    assert S.push_marks == ALL and S.direction == "both" and S.update_reason.strip()


def test_a_wegive_opt_out_is_pushed_whole_and_not_pulled_back() -> None:
    d = both(True, NONE)
    assert d.add_marks == ALL and not d.set_do_not_contact and d.target == ALL and d.overrides == ()


def test_a_settled_pair_writes_nothing() -> None:
    assert both(True, ALL, Base(True, ALL, ALL)).add_marks == NONE
    assert not both(True, ALL, Base(True, ALL, ALL)).set_do_not_contact
    assert both(True, {"OptedOut"}, Base(True, frozenset({"OptedOut"}), frozenset({"OptedOut"}))).add_marks == NONE
    assert both(False, NONE) == decide(False, NONE, None, S, push=True, pull=True)
    assert not both(False, NONE).target  # nobody opted out: nothing to remember


def test_an_opt_in_in_bloomerang_never_undoes_a_wegive_opt_out_and_is_a_conflict() -> None:
    d = both(True, NONE, Base(True, ALL, ALL))
    assert d.add_marks == ALL and d.overrides == ("bloomerang",)


def test_an_opt_in_in_wegive_never_undoes_a_bloomerang_opt_out_and_is_a_conflict() -> None:
    d = both(False, ALL, Base(True, ALL, ALL))
    assert d.set_do_not_contact and d.add_marks == NONE and d.overrides == ("wegive",)


def test_a_bloomerang_email_opt_out_reaches_wegive_without_escalating_in_bloomerang() -> None:
    d = both(False, {"OptedOut"})
    assert d.set_do_not_contact and d.add_marks == NONE and d.target == {"OptedOut"} and d.overrides == ()
    # the next run sees WeGive's flag we wrote: still nothing added in Bloomerang
    again = both(True, {"OptedOut"}, Base(True, frozenset({"OptedOut"}), d.target))
    assert again.add_marks == NONE and not again.set_do_not_contact


def test_a_channel_restriction_alone_does_not_silence_wegive() -> None:
    d = both(False, {"DoNotMail"})
    assert not d.set_do_not_contact and d.add_marks == NONE and not d.target


def test_people_may_re_subscribe_on_both_sides_the_sync_never_does() -> None:
    d = both(False, NONE, Base(True, ALL, ALL))
    assert d.resubscribed and not d.target and not d.set_do_not_contact and d.add_marks == NONE


def test_directions_limit_the_writes() -> None:
    assert decide(True, NONE, None, S, push=False, pull=True).add_marks == NONE
    assert not decide(False, frozenset({"OptedOut"}), None, S, push=True, pull=False).set_do_not_contact


def test_a_donor_wegive_no_longer_lists_keeps_bloomerang_opted_out() -> None:
    d = both(None, NONE, Base(True, ALL, ALL))
    assert d.add_marks == ALL and not d.set_do_not_contact


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), (None, False), ("1", True), ("0", False), ("true", True), ("false", False),
    ("", False), (1, True), (0, False), ("2024-05-01", True)])
def test_do_not_contact_values(value, expected) -> None:
    assert parse_do_not_contact(value) is expected


def test_marks_of_a_constituent() -> None:
    assert bloomerang_marks({"CommunicationRestrictions": ["DoNotCall"], "EmailInterestType": "OptedOut"}) == {
        "DoNotCall", "OptedOut"}
    assert bloomerang_marks({"EmailInterestType": "Custom"}) == NONE and bloomerang_marks(None) == NONE


def test_the_body_keeps_what_a_person_set_and_sends_only_what_changes() -> None:
    body = settings_body(7, {"CommunicationRestrictions": ["DoNotMail"], "EmailInterestType": "All"}, ALL, "why")
    assert body == {"Id": 7, "CommunicationRestrictions": {"UpdateReason": "why", "CommunicationRestrictions": [
        "DoNotMail", "DoNotCall", "DoNotSolicit"]}, "EmailInterests": {"UpdateReason": "why",
                                                                      "EmailInterestType": "OptedOut"}}
    assert settings_body(7, {"CommunicationRestrictions": list(ALL - {"OptedOut"}), "EmailInterestType": "OptedOut"},
                         ALL, "why") == {"Id": 7}


def test_the_yaml_keys_are_checked() -> None:
    with pytest.raises(ValidationError):
        CommunicationSettings(restrictions=["DoNotText"])
    with pytest.raises(ValidationError):
        CommunicationSettings(restrictions=[], email_opt_out=False)
    with pytest.raises(ValidationError):
        CommunicationSettings(update_reason="   ")
    with pytest.raises(ValidationError):
        CommunicationSettings(pull_when=[])
    assert CommunicationSettings(direction="off", restrictions=[], email_opt_out=False, pull_when=[])
