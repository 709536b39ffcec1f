"""The transform registry: each transform, and the vectorized fast paths agreeing with the libraries."""

import random

import pandas as pd
import phonenumbers
import pytest
from email_validator import EmailNotValidError, validate_email

from bloom_pipeline.mapping import transforms as t
from bloom_pipeline.mapping import validators

CTX = t.Context(timezone="America/Denver", phone_region="US")


def run(name, values, arg=None):
    return t.REGISTRY[name].fn(pd.Series(values, dtype=object), CTX, arg)


def test_cents_to_dollars_is_exact():
    values, errs = run("cents_to_dollars", [1, 10, 12345, 19999999, None, "250"])
    assert values.tolist() == [0.01, 0.1, 123.45, 199999.99, None, 2.5]
    assert errs.isna().all()


def test_dollars_rounds_to_two_places():
    values, _ = run("dollars", ["12.345", 10, "0.1", None])
    assert values.tolist() == [12.34, 10.0, 0.1, None]  # Decimal half-even


def test_to_date_converts_time_zone_and_dst():
    values, errs = run("to_date", ["2025-03-02T05:30:00Z", "2025-07-01T05:30:00.000000Z", "2025-07-01 12:00:00",
                                   "2025-07-01T01:00:00-04:00", "garbage"])
    assert values.tolist() == ["2025-03-01", "2025-06-30", "2025-07-01", "2025-06-30", None]
    assert errs.tolist()[-1] == "'garbage' is not a date"


def test_epoch_to_date():
    assert run("epoch_to_date", [1716240000, None])[0].tolist() == ["2024-05-20", None]


def test_ref_and_strings():
    assert run("ref", [1012, None, 3.0], "wegive.donors")[0].tolist() == [
        "ref:wegive.donors:1012", None, "ref:wegive.donors:3"]


def test_small_transforms():
    assert run("card_type", ["VISA", "amex", "Mastercard", "unknown"])[0].tolist() == [
        "Visa", "AmericanExpress", "MasterCard", None]
    assert run("account_type", ["savings", "x"])[0].tolist() == ["Savings", None]
    assert run("last_four", ["4242424242424242", "12"])[0].tolist() == ["4242", None]
    assert run("digits_only", ["check #1042", "n/a"])[0].tolist() == ["1042", None]
    values, errs = run("integer", [12, "07", "x", None])
    assert values.tolist() == [12, 7, None, None] and errs.tolist()[2] == "'x' is not a whole number"
    assert t.join_lines([pd.Series(["1 Main", None]), pd.Series([" Apt 2", None])], CTX)[0].tolist() == [
        "1 Main\nApt 2", None]
    assert t.note_list([pd.Series(["Gala", None]), pd.Series([["A", "B"], "C"])], CTX)[0].tolist() == [
        "Gala; A; B", "C"]


def _email_ok(value):
    try:
        validate_email(value, check_deliverability=False)
        return True
    except EmailNotValidError:
        return False


def test_email_fast_path_agrees_with_email_validator():
    rng = random.Random(7)
    alphabet = "abcXYZ019._%+-@\"' ()[]\\é"
    samples = ["ada@example.org", "a.b+c@mail.co.uk", "x@localhost", "x@host.test", "a..b@x.com", ".a@x.com",
               "a@-x.com", "a@x.c", "a@x", "a" * 65 + "@x.com", "ü@x.com", "a@x_y.com", "a@123.com", "a@x.123"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(3, 15))) for _ in range(1500)]
    samples += [f"{rng.choice(['j', 'j.d', 'j+1'])}@{rng.choice(['a', 'b-c', 'x1'])}."
                f"{rng.choice(['com', 'io', 'test'])}" for _ in range(200)]
    got = validators.emails_valid(pd.Series(samples, dtype=object)).tolist()
    assert got == [_email_ok(s) for s in samples]


def _phone_reference(raw):
    try:
        number = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_valid_number(number):
        return raw
    fmt = (phonenumbers.PhoneNumberFormat.NATIONAL if phonenumbers.region_code_for_number(number) == "US"
           else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return phonenumbers.format_number(number, fmt)


def test_phone_fast_path_agrees_with_phonenumbers():
    rng = random.Random(11)
    samples = ["3035551212", "(303) 555-1212", "+1 303 555 1212", "1-303-555-1212", "555-1212", "123-456-7890",
               "+13035551212", "+44 20 7946 0958", "8005551212", "9005551212", "+1303555121", "3O3-555-1212"]
    for _ in range(2000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.choice([7, 10, 10, 10, 11])))
        samples.append(rng.choice(["{}", "+{}", "({}", "{} "]).format(digits))
    got = validators.format_phones(pd.Series(samples, dtype=object), "US").tolist()
    assert got == [_phone_reference(s.strip()) for s in samples]


@pytest.mark.parametrize(("raw", "region", "formatted", "digits"), [
    ("3035551212", "US", "(303) 555-1212", "3035551212"),
    ("+44 20 7946 0958", "US", "+44 20 7946 0958", "+442079460958"),
    ("020 7946 0958", "GB", "020 7946 0958", "2079460958"),
    ("not a phone", "US", "not a phone", "not a phone"),
])
def test_phone_format_and_pull_digits(raw, region, formatted, digits):
    assert validators.format_phones(pd.Series([raw]), region).tolist() == [formatted]
    assert validators.phone_digits(pd.Series([formatted]), region).tolist() == [digits]


def test_registry_is_closed():
    assert "eval" not in t.REGISTRY and all(callable(spec.fn) for spec in t.REGISTRY.values())


@pytest.mark.parametrize("raw", ["3035551212", "(303) 555-1212 ext. 4", "+44 20 7946 0958", "303.555.1212 x12", "555"])
def test_phone_is_sent_and_pulled_as_provided(raw):
    sent, errors = t.REGISTRY["phone"].fn(pd.Series([f"  {raw} "]), CTX)
    assert sent.tolist() == [raw] and errors is None
    assert t.REGISTRY["phone"].inverse(pd.Series([raw]), CTX).tolist() == [raw], "what Bloomerang holds, as held"


def test_phone_formatted_formats_for_the_region_when_an_org_asks():
    got, _ = t.REGISTRY["phone_formatted"].fn(pd.Series(["3035551212", "+44 20 7946 0958", "not a phone"]), CTX)
    assert got.tolist() == ["(303) 555-1212", "+44 20 7946 0958", "not a phone"]
