"""Line math and money formatting, without a database."""

import random
from decimal import Decimal
from typing import Any

import pytest

from tenvoice.invoices.amounts import Line, price_line
from tenvoice.platform.money import (
    MoneyError,
    currency_exponent,
    format_decimal,
    format_minor,
    format_scaled,
    parse_decimal,
    to_minor,
)


def _price(quantity: str, unit_price: str, tax_rate: str, currency: str) -> tuple[int, int]:
    line = Line("Work", Decimal(quantity), Decimal(unit_price), Decimal(tax_rate))
    return price_line(line, currency)


def test_the_api_md_example() -> None:
    lines = [_price("2", "100", "11", "USD"), _price("1", "50", "11", "USD")]
    assert lines == [(20000, 2200), (5000, 550)]
    subtotal, tax = sum(s for s, _ in lines), sum(t for _, t in lines)
    assert format_minor(subtotal, "USD") == "250.00"
    assert format_minor(tax, "USD") == "27.50"
    assert format_minor(subtotal + tax, "USD") == "277.50"


@pytest.mark.parametrize(
    ("quantity", "unit_price", "currency", "subtotal"),
    [
        # Half-up, not banker's rounding: the half always goes up.
        ("1", "0.005", "USD", 1),
        ("1", "0.004999", "USD", 0),
        ("1", "0.025", "USD", 3),
        ("1", "0.015", "USD", 2),
        ("1", "0.125", "JPY", 0),
        ("1", "0.5", "JPY", 1),
        ("1", "2.5", "JPY", 3),
        ("3", "0.5", "JPY", 2),
        ("1", "1.2345", "KWD", 1235),
        ("1", "1.2344", "KWD", 1234),
        ("1", "1.0005", "KWD", 1001),
        ("1", "0", "USD", 0),
        # quantity (4 places) x unitPrice (6 places) is exact before the one rounding.
        ("0.0001", "50.000001", "USD", 1),
        ("0.0001", "49.999999", "USD", 0),
        ("999999.9999", "9999.999999", "USD", 999999999800),
        ("2.5", "0.333333", "USD", 83),
        ("2.5", "0.333333", "KWD", 833),
        ("7", "1500", "JPY", 10500),
    ],
)
def test_subtotal_rounds_half_up_to_the_minor_unit(
    quantity: str, unit_price: str, currency: str, subtotal: int
) -> None:
    assert _price(quantity, unit_price, "0", currency) == (subtotal, 0)


@pytest.mark.parametrize(
    ("unit_price", "tax_rate", "currency", "expected"),
    [
        ("0.10", "5", "USD", (10, 1)),  # 0.005 -> 0.01
        ("0.10", "4.9999", "USD", (10, 0)),
        ("10", "5", "JPY", (10, 1)),  # 0.5 JPY -> 1
        ("10", "4", "JPY", (10, 0)),
        ("1", "12.5", "KWD", (1000, 125)),
        ("100", "100", "USD", (10000, 10000)),
        ("100", "0", "USD", (10000, 0)),
        ("33.33", "7.25", "USD", (3333, 242)),  # 2.416425 -> 2.42
        # The tax is taken on the rounded subtotal (0.01), not on 0.0051: 0.009 -> 0.01.
        ("0.0051", "90", "USD", (1, 1)),
    ],
)
def test_tax_is_rounded_half_up_from_the_rounded_subtotal(
    unit_price: str, tax_rate: str, currency: str, expected: tuple[int, int]
) -> None:
    assert _price("1", unit_price, tax_rate, currency) == expected


def test_a_line_too_large_for_the_ledger_is_refused_not_rounded() -> None:
    # 31 significant digits: more than Decimal's default context holds.
    with pytest.raises(MoneyError, match="too large"):
        _price("999999999.9999", "999999999999.999999", "0", "USD")


def test_unknown_currency_cannot_price_a_line() -> None:
    with pytest.raises(MoneyError, match="unknown currency"):
        _price("1", "1", "0", "XXY")


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3), ("CLF", 4)],
)
def test_currency_exponents_follow_iso_4217(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("minor", "currency", "wire"),
    [
        (27750, "USD", "277.50"),
        (1500, "JPY", "1500"),
        (1250, "KWD", "1.250"),
        (0, "USD", "0.00"),
        (0, "JPY", "0"),
        (0, "KWD", "0.000"),
        (5, "USD", "0.05"),
        (-5, "USD", "-0.05"),
        (1, "CLF", "0.0001"),
        (100000000000000, "USD", "1000000000000.00"),
    ],
)
def test_format_minor_prints_exactly_the_currency_digits(
    minor: int, currency: str, wire: str
) -> None:
    assert format_minor(minor, currency) == wire


def test_format_minor_refuses_an_unknown_currency() -> None:
    with pytest.raises(MoneyError):
        format_minor(100, "ABC")


@pytest.mark.parametrize(
    ("value", "min_places", "wire"),
    [
        (Decimal("100"), 0, "100"),
        (Decimal("1E+2"), 0, "100"),
        (Decimal("1.50000"), 0, "1.5"),
        (Decimal("10.5"), 2, "10.50"),
        (Decimal("0.123456"), 2, "0.123456"),
        (Decimal("11.0000"), 0, "11"),
    ],
)
def test_format_decimal_is_plain_and_trimmed(value: Decimal, min_places: int, wire: str) -> None:
    assert format_decimal(value, min_places) == wire


def test_format_scaled_writes_a_stored_integer_as_format_decimal_writes_its_decimal() -> None:
    # Every scale the schema stores, edges and a spread of values, both signs.
    rng = random.Random(7)
    values = [0, 1, 9, 10, 99, 100, 10**6, 10**12 + 1, *(rng.randrange(10**15) for _ in range(500))]
    for scale in (0, 2, 4, 6):
        for min_places in (0, 2, 3):
            for value in values + [-v for v in values]:
                expected = format_decimal(Decimal(value).scaleb(-scale), min_places)
                assert format_scaled(value, scale, min_places) == expected, (value, scale)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.2345", Decimal("1.2345")),
        (" 2.5 ", Decimal("2.5")),
        # Trailing zeros past the limit carry no precision, so they are not "too many".
        ("1.23450000", Decimal("1.2345")),
        ("2.000", Decimal("2")),
        (0.1, Decimal("0.1")),
        (7, Decimal("7")),
        ("-3.5", Decimal("-3.5")),
    ],
)
def test_parse_decimal_accepts_strings_and_numbers(value: Any, expected: Decimal) -> None:
    parsed = parse_decimal(value, max_places=4)
    assert parsed == expected
    assert isinstance(parsed, Decimal)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.23456", "more than 4 decimal places"),
        (0.00001, "more than 4 decimal places"),
        ("NaN", "plain decimal"),
        ("nan", "plain decimal"),
        ("sNaN", "plain decimal"),
        ("Infinity", "plain decimal"),
        ("-inf", "plain decimal"),
        (float("nan"), "finite"),
        (float("inf"), "finite"),
        (True, "decimal string or a number"),
        (False, "decimal string or a number"),
        (None, "decimal string or a number"),
        ([1], "decimal string or a number"),
        ({"amount": 1}, "decimal string or a number"),
        ("abc", "plain decimal"),
        ("", "plain decimal"),
        ("1.2.3", "plain decimal"),
        # Decimal() itself would take these; an amount on the wire is written plainly.
        ("1e3", "plain decimal"),
        ("1_000", "plain decimal"),
        ("+5", "plain decimal"),
        (".5", "plain decimal"),
        (1e19, "too large"),
        ("99999999999999999999", "too large"),
        # More digits than the default decimal context: must be a MoneyError, not a crash.
        ("1234567890123456789012345.12345", "too large"),
        ("9" * 40 + ".5", "too large"),
    ],
)
def test_parse_decimal_rejects_what_is_not_a_plain_amount(value: Any, message: str) -> None:
    with pytest.raises(MoneyError, match=message):
        parse_decimal(value, max_places=4, what="amount")


def test_parse_decimal_names_the_field_in_its_message() -> None:
    with pytest.raises(MoneyError, match=r"^unitPrice has more than 6 decimal places$"):
        parse_decimal("0.1234567", max_places=6, what="unitPrice")


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("10.00", "USD", 1000), ("10", "JPY", 10), ("1.25", "KWD", 1250), ("-0.01", "USD", -1)],
)
def test_to_minor(amount: str, currency: str, minor: int) -> None:
    assert to_minor(Decimal(amount), currency) == minor


@pytest.mark.parametrize(("amount", "currency"), [("1.005", "USD"), ("0.5", "JPY")])
def test_to_minor_refuses_digits_finer_than_the_currency(amount: str, currency: str) -> None:
    with pytest.raises(MoneyError, match="decimal places"):
        to_minor(Decimal(amount), currency)
