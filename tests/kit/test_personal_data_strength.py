"""The personal-data mask's checks beyond its patterns (mendkit/personal_data.py):
the Luhn check of card numbers, a phone number's 7 to 15 digits, a date in
brackets left alone. Pinned where the mutation run (scripts/mutate,
docs/testing.md) found a change that no test noticed."""

from __future__ import annotations

from mendkit.personal_data import CARD, PHONE, mask


def test_a_card_number_passing_the_luhn_check_with_a_nine_in_it_is_masked():
    # Valid by Luhn (a 9 among the digits counted as they are); a check that took 9 for 0 would miss it.
    assert mask("card 4917 6100 0000 0000 was charged") == f"card {CARD} was charged"
    assert mask("card 4917 6100 0000 0001 was charged") == "card 4917 6100 0000 0001 was charged"


def test_a_phone_number_has_seven_to_fifteen_digits():
    assert mask("call me on 555-0123") == f"call me on {PHONE}"  # 7
    assert mask("call me on 55-0123") == "call me on 55-0123"  # 6: too short for a phone number
    assert mask("ring +49 30 1234 5678 901") == f"ring {PHONE}"  # 15


def test_a_date_in_brackets_is_no_phone_number():
    assert mask("it was delivered on (2024-01-15) at noon") == "it was delivered on (2024-01-15) at noon"
