from __future__ import annotations

import pytest

from triage.config import PiiPattern, TriageSettings
from triage.pii import iban_valid, luhn_valid, redact

DEFAULT = TriageSettings().pii_patterns


@pytest.mark.parametrize(
    ("text", "expected", "kinds"),
    [
        # cards: masked only when the Luhn check passes
        ("my card 4111 1111 1111 1111 was charged", "my card [card] was charged", ("card",)),
        ("card 4111-1111-1111-1111", "card [card]", ("card",)),
        ("5500000000000004 declined", "[card] declined", ("card",)),
        ("amex 3782 822463 10005 ok", "amex [card] ok", ("card",)),
        ("ref 4111 1111 1111 1112 is not a card", "ref 4111 1111 1111 1112 is not a card", ()),
        ("1234567812345678", "1234567812345678", ()),
        # emails
        ("mail me at john.doe+x@example.co.uk", "mail me at [email]", ("email",)),
        ("ANA@Example.COM wrote", "[email] wrote", ("email",)),
        # phones, international and national formats
        ("call +44 20 7946 0958 now", "call [phone] now", ("phone",)),
        ("+1-202-555-0143", "[phone]", ("phone",)),
        ("+33 6 12 34 56 78", "[phone]", ("phone",)),
        ("+49 (0)30 901820", "[phone]", ("phone",)),
        ("(555) 123-4567", "[phone]", ("phone",)),
        ("555-123-4567", "[phone]", ("phone",)),
        ("07700 900123", "[phone]", ("phone",)),
        ("0049 30 901820", "[phone]", ("phone",)),
        ("+91 98765 43210", "[phone]", ("phone",)),
        # IBANs (mod-97 checked)
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [iban]", ("iban",)),
        ("GB82WEST12345698765432 please", "[iban] please", ("iban",)),
        ("GB82WEST12345698765433 please", "GB82WEST12345698765433 please", ()),
        # addresses where detectable
        ("I live at 221B Baker Street, London", "I live at [address], London", ("address",)),
        ("ship to 1600 Pennsylvania Avenue", "ship to [address]", ("address",)),
        # configurable patterns: the default order id
        ("order #A12345-678 missing", "[order_id] missing", ("order_id",)),
        ("order number: 99887766 never came", "[order_id] never came", ("order_id",)),
        # things that must stay
        ("paid 2500 dollars in 2023, ticket 12345", "paid 2500 dollars in 2023, ticket 12345", ()),
        ("version 1.2.3 released on 2024-05-01", "version 1.2.3 released on 2024-05-01", ()),
        ("app crashes on login", "app crashes on login", ()),
    ],
)
def test_redact(text: str, expected: str, kinds: tuple[str, ...]) -> None:
    assert redact(text, DEFAULT) == (expected, kinds)


def test_several_kinds_in_order() -> None:
    text = "I'm ana@example.com, +44 20 7946 0958, card 4111111111111111"
    assert redact(text, DEFAULT) == ("I'm [email], [phone], card [card]", ("email", "card", "phone"))


def test_configurable_pattern() -> None:
    patterns = (PiiPattern(name="ticket", pattern=r"\bTCK-\d{4,}\b"),)
    assert redact("see TCK-20931 and TCK-1", patterns) == ("see [ticket] and TCK-1", ("ticket",))
    with pytest.raises(ValueError):
        PiiPattern(name="bad", pattern="[unclosed")


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("79927398710", False)],
)
def test_luhn(digits: str, valid: bool) -> None:
    assert luhn_valid(digits) is valid


@pytest.mark.parametrize(
    ("iban", "valid"),
    [
        ("DE89370400440532013000", True),
        ("DE89370400440532013001", False),
        ("FR1420041010050500013M02606", True),
    ],
)
def test_iban(iban: str, valid: bool) -> None:
    assert iban_valid(iban) is valid
