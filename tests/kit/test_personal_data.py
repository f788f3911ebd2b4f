"""What `mendkit.personal_data.mask` finds in customers' words: planted values
of each kind, in the spellings people type, are masked; the questions of two
public customer-support datasets (which hold no personal data) are left alone."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mendkit.personal_data import ACCOUNT, ADDRESS, CARD, EMAIL, ORDER, PHONE, mask

DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"

PLANTED = [
    ("Mail me at jane.doe+shop@example.co.uk please", "jane.doe+shop@example.co.uk", EMAIL),
    ("my address is J.Smith@mail.example.org.", "J.Smith@mail.example.org", EMAIL),
    ("Card 4111 1111 1111 1111 was charged twice", "4111 1111 1111 1111", CARD),
    ("charged on 5500-0000-0000-0004 yesterday", "5500-0000-0000-0004", CARD),
    ("amex 378282246310005 declined", "378282246310005", CARD),
    ("Call me on +44 20 7946 0958", "+44 20 7946 0958", PHONE),
    ("my number is (555) 123-4567", "(555) 123-4567", PHONE),
    ("ring 0612345678 after six", "0612345678", PHONE),
    ("reach me at 0049 30 901820", "0049 30 901820", PHONE),
    ("Where is my order 4411-2093?", "4411-2093", ORDER),
    ("order number: AB123456 hasn't arrived", "AB123456", ORDER),
    ("I returned order #882731 last week", "882731", ORDER),
    ("my invoice INV-20931 is wrong", "INV-20931", ORDER),
    ("tracking no. 1Z999AA10123456784 shows nothing", "1Z999AA10123456784", ORDER),
    ("the parcel AF203914 never came", "AF203914", ORDER),
    ("Ship it to 221B Baker Street please", "221B Baker Street", ADDRESS),
    ("I live at 12 high st. in Leeds", "12 high st.", ADDRESS),
    ("I live at 123 Main St, Springfield", "123 Main St", ADDRESS),
    ("it went to 55 Oak Rd instead", "55 Oak Rd", ADDRESS),
    ("deliver to 5 Elm Close tomorrow", "5 Elm Close", ADDRESS),
    ("Lieferung an Hauptstraße 5", "Hauptstraße 5", ADDRESS),
    ("envoyez au 10 rue de Rivoli", "10 rue de Rivoli", ADDRESS),
    ("postcode SW1A 1AA", "SW1A 1AA", ADDRESS),
    ("it is 10115 Berlin", "10115 Berlin", ADDRESS),
    ("refund to IBAN DE89 3704 0044 0532 0130 00", "DE89 3704 0044 0532 0130 00", ACCOUNT),
    ("my iban is de89370400440532013000", "de89370400440532013000", ACCOUNT),
]


@pytest.mark.parametrize(("text", "value", "placeholder"), PLANTED, ids=[p[1] for p in PLANTED])
def test_a_planted_value_is_replaced_by_a_placeholder_naming_its_kind(text, value, placeholder):
    masked = mask(text)
    assert value not in masked and placeholder in masked
    # The rest of the sentence still reads ("order #882731" becomes "order [order number]").
    assert masked.replace("#", "") == text.replace(value, placeholder).replace("#", "")


def test_several_values_in_one_message_are_all_masked():
    text = ("I'm Jane (jane@example.com, +44 7700 900123), my card 4111 1111 1111 1111 paid order #99381 "
            "to 10 Downing Street and it never came")
    masked = mask(text)
    for value in ("jane@example.com", "7700 900123", "4111 1111 1111 1111", "99381", "10 Downing Street"):
        assert value not in masked
    assert masked.startswith("I'm Jane (") and masked.endswith("and it never came")


@pytest.mark.parametrize("text", [
    "Do you rent out tents?",
    "I ordered on 2024-01-15 and paid €1,299.00 for 3 tents",
    "It happened at 10:30 on 12/03/2024",
    "Is the Trail 2P tent waterproof to 3000mm?",
    "I bought 2 tents on the way home",
    "What is the return policy for orders over 75 euros?",
    "My order was 2 days late",
    "The 40L backpack and the X100 stove",
    "Is the WH-1000XM4 in stock?",
    "Does the MacBook Air A2337 charger fit?",
    "The TV shows error code E1234",
    "card 4111 1111 1111 1112 is not a card number: it fails the Luhn check",
    "",
])
def test_ordinary_questions_are_left_as_they_are(text):
    assert mask(text) == text


def dataset_questions() -> dict[str, list[str]]:
    banking = [row["text"] for name in ("train.csv", "test.csv")
               for row in csv.DictReader((DATASETS / "banking77" / name).open())]
    clinc = [text for split in json.loads((DATASETS / "clinc150" / "data_full.json").read_text()).values()
             for text, _ in split]
    return {"banking77": banking, "clinc150": clinc}


@pytest.mark.skipif(not DATASETS.exists(), reason="the public datasets are not beside the project")
def test_almost_no_question_of_public_datasets_is_changed():
    """13,083 banking77 and 23,700 clinc150 questions, written without personal
    data (a handful of clinc150's hold an address or an account number)."""
    for name, questions in dataset_questions().items():
        changed = [q for q in questions if mask(q) != q]
        assert len(questions) > 10_000 and len(changed) <= len(questions) / 1000, (name, changed[:10])
