"""Personal data in customers' words, found and masked.

Customers write their e-mail address, phone number, card number, order number
or home address into a chat or a comment. Interactions keeps what they wrote
(it owns the exchange, and its retention setting deletes or masks old ones);
everywhere else that text could travel further it is masked first: before it
leaves for a cloud model (the bot's prompts and embeddings, the trainer's
teacher and judge) and before a question becomes a phrasing or the title of a
published knowledge entry (the trainer reads every question masked).

Each kind is replaced by a placeholder naming it, such as `[email]`, so that
the sentence still reads ("where is order [order number]?") and a model, an
embedding or a reviewer still sees what was asked. Patterns, not a model: they
run everywhere, cost microseconds, and what they catch is tested with planted
values (tests/kit/test_personal_data.py). Card numbers must pass the Luhn
check, so prices, dates and quantities stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable

EMAIL, PHONE, CARD, ORDER, ADDRESS, ACCOUNT = (
    "[email]", "[phone number]", "[card number]", "[order number]", "[address]", "[account number]")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13 to 19 digits, grouped by spaces or dashes as people type them.
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")
# What follows a word that names an order-like number: "order 4411-2093", "invoice #INV-20931", "ref: AB1234".
_ORDER_AFTER_WORD = re.compile(
    r"(?i)\b(?:orders?|invoice|tracking|reference|ref|booking|confirmation|parcel|shipment|rma|case|ticket|"
    r"return)(?:\s+(?:number|no\.?|num|id|code))?\s*(?:is\s+|was\s+)?[:#]?\s*"
    r"(?=[A-Z0-9-]*\d)([A-Z0-9](?:[A-Z0-9-]*[A-Z0-9]){2,})\b")
_HASH_NUMBER = re.compile(r"(?<!\w)#\s?\d{3,}\b")
# A code of capitals and at least six digits, as order systems print them: AF203914, ORD-203914.
# Product models have fewer (WH-1000XM4, A2337, KD-55X85K) and stay as they are.
_CODE = re.compile(r"\b(?=[A-Z0-9-]*[A-Z])(?=(?:[A-Z-]*\d){6})[A-Z0-9]{2,}(?:-[A-Z0-9]+)*\b")
# A phone number: an optional +country code, then groups of digits with spaces, dots, dashes or brackets;
# 7 to 15 digits in all (checked apart). Not a date: those are left as they are.
_PHONE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\d[\d ().-]{5,20}\d(?!\w)")
_DATE = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_STREET_WORD = (r"(?:street|st\b\.?|road|rd\b\.?|avenue|ave\b\.?|boulevard|blvd\b\.?|lane|ln\b\.?|drive|dr\b\.?|"
                r"highway|hwy\b\.?|parkway|terrace)")
_STREETS = [
    # 221B Baker Street, 12 high st., 1600 Pennsylvania Avenue NW
    re.compile(rf"(?i)\b\d{{1,5}}[a-z]?,?\s+(?:[a-z][\w'.-]*\s+){{1,4}}{_STREET_WORD}(?!\w)"),
    # 5 Elm Close, 3 Marsh Way: capitalised, as these names are common words otherwise.
    re.compile(r"\b\d{1,5}[a-z]?,?\s+(?:[A-Z][\w'.-]*\s+){1,3}(?:Way|Close|Place|Court|Square|Crescent|Gardens|Row|"
               r"Mews|Hill|Grove)\b"),
    # Hauptstraße 5, Kerkstraat 12a, Via Roma 3, Rue de Rivoli 10
    re.compile(r"(?i)\b[\wäöüß-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|straat|laan|gracht)\s+\d{1,4}[a-z]?\b"),
    re.compile(r"(?i)\b\d{1,4},?\s+(?:rue|avenue|boulevard|place|chemin|allée|via|calle|avenida)\s+"
               r"(?:(?:de|du|des|la|le|del|della|di)\s+)*[\w'-]+"),
    re.compile(r"(?i)\b(?:rue|via|calle|avenida)\s+(?:(?:de|du|des|la|le|del|della|di)\s+)*[\w'-]+\s+\d{1,4}\b"),
]
_POSTCODES = [
    re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b"),  # SW1A 1AA, M1 1AE (United Kingdom)
    re.compile(r"\b\d{4} ?[A-Z]{2}\b(?![\w-])"),  # 1012 AB (Netherlands)
    re.compile(r"\b[A-Z]{2} \d{5}(?:-\d{4})?\b"),  # CA 94105 (United States)
    re.compile(r"\b\d{5} [A-ZÄÖÜÉ][a-zäöüßéèà]+(?:-[A-Z][a-zäöüßéèà]+)?\b"),  # 10115 Berlin, 75001 Paris
]


def _luhn(digits: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return CARD if _luhn(digits) else match.group()


def _phone(match: re.Match[str]) -> str:
    text = match.group()
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or _DATE.fullmatch(text.strip("()")):
        return text
    return PHONE


def _order(match: re.Match[str]) -> str:
    """Only the number is masked: "order #4411" reads "order [order number]"."""
    before = match.group()[:match.start(1) - match.start()]
    return before.rstrip("# ") + " " + ORDER


_STEPS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (_EMAIL, EMAIL),
    (_IBAN, ACCOUNT),
    (_CARD, _card),
    (_ORDER_AFTER_WORD, _order),
    (_HASH_NUMBER, ORDER),
    *[(street, ADDRESS) for street in _STREETS],
    *[(postcode, ADDRESS) for postcode in _POSTCODES],
    (_CODE, ORDER),
    (_PHONE, _phone),
]


def mask(text: str) -> str:
    """`text` with every e-mail address, phone, card, account and order number and
    postal address replaced by a placeholder naming its kind."""
    if not text:
        return text
    for pattern, replacement in _STEPS:
        text = pattern.sub(replacement, text)
    return text
