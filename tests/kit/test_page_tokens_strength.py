"""Page tokens and their secret at their edges, pinned where the mutation run
(scripts/mutate, docs/testing.md) found a change that no test noticed: the
secret's minimum length, every token reading back, the exact refusals, and the
last page having no token."""

from __future__ import annotations

import pytest

from mendkit.errors import InvalidArgument
from mendkit.page_tokens import PageTokens, secret_from_env
from mendkit.settings import SettingsError

NOT_OURS = "page_token: is not a page token issued by this service"


def test_a_secret_of_sixteen_bytes_is_enough_and_fifteen_is_not():
    PageTokens(b"s" * 16)
    with pytest.raises(ValueError, match="^the page token secret must be at least 16 bytes$"):
        PageTokens(b"s" * 15)


def test_the_secret_from_the_environment(monkeypatch):
    monkeypatch.setenv("MEND_PAGE_TOKEN_SECRET", "s" * 16)
    assert secret_from_env() == b"s" * 16
    monkeypatch.setenv("MEND_PAGE_TOKEN_SECRET", " " + "s" * 15 + " ")
    with pytest.raises(SettingsError) as raised:
        secret_from_env()
    assert str(raised.value) == "MEND_PAGE_TOKEN_SECRET must be at least 16 characters"
    # Unset: a random key of 32 bytes per process (one replica only).
    monkeypatch.delenv("MEND_PAGE_TOKEN_SECRET")
    first, second = secret_from_env(), secret_from_env()
    assert len(first) == 32 and first != second


def test_every_token_reads_back_as_its_cursor():
    """Thousands of cursors, so that tokens of every length and last character
    (base64's alphabet, its padding stripped) are among them."""
    tokens = PageTokens(b"tests-page-token-secret")
    for n in range(2000):
        cursor = [n * 7919, f"id-{'x' * (n % 7)}{n}"]
        token = tokens.encode(cursor, ["filters", n % 3])
        assert "=" not in token
        assert tokens.decode(token, ["filters", n % 3]) == cursor


def refusal(tokens: PageTokens, token: str, filters=("f",)) -> str:
    with pytest.raises(InvalidArgument) as raised:
        tokens.after(token, list(filters), lambda cursor: (cursor[0], cursor[1]))
    return raised.value.message


def test_each_refusal_says_why_naming_the_page_token():
    tokens = PageTokens(b"tests-page-token-secret")
    good = tokens.encode([1, "a"], ["f"])
    assert refusal(tokens, "A") == NOT_OURS  # not base64: one character too many
    assert refusal(tokens, "jeton-été") == NOT_OURS  # not base64: not even ASCII
    assert refusal(tokens, "%%%") == NOT_OURS  # nothing base64 can read
    assert refusal(tokens, good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]) == NOT_OURS  # altered
    assert refusal(tokens, PageTokens(b"another-secret-of-ours").encode([1, "a"], ["f"])) == NOT_OURS  # forged
    assert refusal(tokens, good, ("g",)) == \
        "page_token: was issued for different filters; start again without a token"
    assert refusal(tokens, tokens.encode("not a list", ["f"])) == NOT_OURS  # type: ignore[arg-type]
    assert refusal(tokens, tokens.encode([1], ["f"])) == NOT_OURS  # a cursor the service cannot read


def test_the_last_page_has_no_token_even_when_it_is_full():
    tokens = PageTokens(b"tests-page-token-secret")
    rows, token = tokens.page([1, 2, 3], 3, ["f"], lambda row: [row])
    assert (list(rows), token) == ([1, 2, 3], "")
    rows, token = tokens.page([1, 2, 3, 4], 3, ["f"], lambda row: [row])
    assert list(rows) == [1, 2, 3] and tokens.decode(token, ["f"]) == [3]
