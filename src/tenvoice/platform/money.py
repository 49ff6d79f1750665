"""Money: ISO 4217 currencies, integer minor units, half-up rounding.

Amounts are stored as integer minor units with their currency and computed with `Decimal`;
a float never touches money.
"""

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 active currency codes whose minor unit is not 2 digits
# (https://www.six-group.com/en/products-services/financial-information/data-standards.html).
_EXPONENT_OVERRIDES = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}
_TWO_DIGIT = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD
    KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD
    NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP
    SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED
    VES WST XCD XCG YER ZAR ZMW ZWG
""".split()
CURRENCY_EXPONENTS: dict[str, int] = {**dict.fromkeys(_TWO_DIGIT, 2), **_EXPONENT_OVERRIDES}

# Keeps every sum of up to 500 lines far inside a signed 64-bit column.
MAX_MINOR_UNITS = 10**15


_PLAIN_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


class MoneyError(ValueError):
    """An amount or currency that cannot be accepted; the message is safe to show a client."""


def currency_exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}: use an ISO 4217 code") from None


def normalize_currency(value: str) -> str:
    code = value.strip().upper()
    currency_exponent(code)
    return code


def parse_decimal(value: object, *, max_places: int, what: str = "value") -> Decimal:
    """A JSON string or number as an exact Decimal with at most `max_places` decimals."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise MoneyError(f"{what} must be a decimal string or a number")
    if isinstance(value, str) and not _PLAIN_DECIMAL.match(value.strip()):
        # Decimal() also takes "1_000", "1e3" and "Infinity"; an amount on the wire is
        # written out plainly.
        raise MoneyError(f"{what} must be a plain decimal such as 12.50")
    try:
        # str() of a float is its shortest round-tripping form: 0.1 stays "0.1".
        number = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise MoneyError(f"{what} is not a decimal number") from None
    if not number.is_finite():
        raise MoneyError(f"{what} must be finite")
    # Size first: quantizing a number of more digits than the context holds raises
    # InvalidOperation instead of answering.
    if number.adjusted() > 18:
        raise MoneyError(f"{what} is too large")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > max_places and number != number.quantize(Decimal(1).scaleb(-max_places)):
        raise MoneyError(f"{what} has more than {max_places} decimal places")
    return Decimal(int(number)) if number == number.to_integral_value() else number


def round_half_up(value: Decimal, places: int = 0) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def to_minor(amount: Decimal, currency: str) -> int:
    """Major units to integer minor units, refusing anything finer than the currency allows."""
    exponent = currency_exponent(currency)
    scaled = amount.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{currency} amounts take at most {exponent} decimal places")
    minor = int(scaled)
    if abs(minor) > MAX_MINOR_UNITS:
        raise MoneyError("amount is too large")
    return minor


def format_minor(minor: int, currency: str) -> str:
    """Integer minor units as the wire string: exactly the currency's digits ("277.50")."""
    exponent = currency_exponent(currency)
    return format_scaled(minor, exponent, exponent)


def format_scaled(value: int, scale: int, min_places: int = 0) -> str:
    """A decimal kept as an integer scaled by 10**scale, written as format_decimal writes it
    (plain, trailing zeros trimmed down to `min_places`).

    Lists format every amount, quantity and price of every invoice through here, so it works
    on the integer's digits: no Decimal, no arithmetic.
    """
    if value < 0:
        return "-" + format_scaled(-value, scale, min_places)
    digits = str(value)
    if not scale:
        return f"{digits}.{'0' * min_places}" if min_places else digits
    digits = digits.rjust(scale + 1, "0")
    fraction = digits[-scale:].rstrip("0")
    if len(fraction) < min_places:
        fraction = fraction.ljust(min_places, "0")
    return f"{digits[:-scale]}.{fraction}" if fraction else digits[:-scale]


def format_decimal(value: Decimal, min_places: int = 0) -> str:
    """A Decimal in plain notation with at least `min_places` decimals and no trailing noise."""
    whole, _, fraction = f"{value:f}".partition(".")
    fraction = fraction.rstrip("0").ljust(min_places, "0")
    return f"{whole}.{fraction}" if fraction else whole
