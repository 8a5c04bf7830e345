"""Location numbers (GLN / EAN lokationsnummer): 13 digits with a GS1 mod-10 check digit."""

from __future__ import annotations

GLN_LENGTH = 13


def gs1_check_digit(body: str) -> int:
    """The GS1 mod-10 check digit for the digits in ``body`` (all but the check digit).

    Weights alternate 3, 1, 3, ... starting from the rightmost digit of the body.
    """
    total = 0
    for position, char in enumerate(reversed(body)):
        total += int(char) * (3 if position % 2 == 0 else 1)
    return (10 - total % 10) % 10


def is_well_formed(value: str) -> bool:
    """Thirteen ASCII digits; says nothing about the check digit."""
    return len(value) == GLN_LENGTH and value.isascii() and value.isdigit()


def has_valid_check_digit(value: str) -> bool:
    """True when ``value`` is well formed and its last digit is the GS1 check digit."""
    return is_well_formed(value) and gs1_check_digit(value[:-1]) == int(value[-1])


def with_check_digit(body: str) -> str:
    """Append the GS1 check digit to a 12-digit body."""
    if len(body) != GLN_LENGTH - 1 or not body.isdigit():
        raise ValueError(f"a GLN body is 12 digits, got {body!r}")
    return body + str(gs1_check_digit(body))
