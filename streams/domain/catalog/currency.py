"""ISO 4217 currencies and their minor units.

An amount that is invoiced as such (a flat fee, a package, a commitment) cannot
have more decimal places than its currency: JPY has none, KWD three. Unit prices
may go finer (a token costs USD 0.000002) because only their products are billed.
"""

from __future__ import annotations

from decimal import Decimal

MINOR_UNITS: dict[str, int] = {
    # Zero decimal places.
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    # Three decimal places.
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
    # Two decimal places.
    "AED": 2,
    "ARS": 2,
    "AUD": 2,
    "BGN": 2,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CNY": 2,
    "COP": 2,
    "CZK": 2,
    "DKK": 2,
    "EGP": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "KES": 2,
    "MAD": 2,
    "MXN": 2,
    "MYR": 2,
    "NGN": 2,
    "NOK": 2,
    "NZD": 2,
    "PEN": 2,
    "PHP": 2,
    "PKR": 2,
    "PLN": 2,
    "QAR": 2,
    "RON": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TRY": 2,
    "TWD": 2,
    "UAH": 2,
    "USD": 2,
    "ZAR": 2,
}


def minor_units(currency: str) -> int | None:
    """Decimal places of ``currency``, None when it is not one we know."""
    return MINOR_UNITS.get(currency)


def fits_currency(amount: Decimal, currency: str) -> bool:
    """True when ``amount`` has no more decimal places than ``currency`` allows.

    Trailing zeros are fine: JPY 100.00 is 100 yen.
    """
    places = MINOR_UNITS.get(currency)
    return places is None or fits_places(amount, places)


def fits_places(amount: Decimal, places: int) -> bool:
    """True when ``amount`` has no more than ``places`` decimal places, trailing zeros aside."""
    if not amount.is_finite() or not amount:
        return True
    _, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    # Read the exponent off the digits: quantize would trip on amounts past 28 digits.
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return exponent + zeros >= -places
