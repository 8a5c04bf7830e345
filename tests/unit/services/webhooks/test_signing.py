"""The signature scheme, as a receiver checks it: no database, no network."""

from __future__ import annotations

import hashlib
import hmac
import time

from soredi_sync.services.webhooks import canonical_json, new_secret, sign, verify

KEY = "whsec_test-key"
BODY = canonical_json({"subscription": "s", "changes": [{"key": "æøå", "cursor": 1}]})


class TestSign:
    def test_the_signature_is_the_hex_hmac_sha256_of_timestamp_dot_body(self) -> None:
        expected = hmac.new(KEY.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
        assert sign(KEY, 1700000000, BODY) == f"sha256={expected}"

    def test_the_body_is_canonical_utf8_json_with_sorted_keys_and_no_spaces(self) -> None:
        assert canonical_json({"b": 1, "a": ["ø"]}) == '{"a":["ø"],"b":1}'.encode()

    def test_new_secrets_are_prefixed_random_and_never_repeat(self) -> None:
        first, second = new_secret(), new_secret()
        assert first.startswith("whsec_") and len(first) == 6 + 43
        assert first != second


class TestVerify:
    def test_a_fresh_correct_signature_verifies(self) -> None:
        now = int(time.time())
        assert verify(KEY, str(now), BODY, sign(KEY, now, BODY))

    def test_a_signature_with_another_key_does_not_verify(self) -> None:
        now = int(time.time())
        assert not verify(KEY, now, BODY, sign("whsec_other", now, BODY))

    def test_a_changed_body_does_not_verify(self) -> None:
        now = int(time.time())
        assert not verify(KEY, now, BODY + b" ", sign(KEY, now, BODY))

    def test_a_changed_timestamp_does_not_verify(self) -> None:
        now = int(time.time())
        assert not verify(KEY, now - 1, BODY, sign(KEY, now, BODY))

    def test_an_old_timestamp_is_refused_even_when_signed_correctly(self) -> None:
        sent = 1_700_000_000
        header = sign(KEY, sent, BODY)
        assert verify(KEY, sent, BODY, header, now=sent + 299)
        assert not verify(KEY, sent, BODY, header, now=sent + 301)
        assert not verify(KEY, sent, BODY, header, now=sent - 301)

    def test_any_one_of_several_signatures_suffices(self) -> None:
        now = int(time.time())
        header = f"{sign('whsec_old', now, BODY)}, {sign(KEY, now, BODY)}"
        assert verify(KEY, now, BODY, header)

    def test_garbage_headers_and_timestamps_do_not_verify(self) -> None:
        now = int(time.time())
        assert not verify(KEY, "yesterday", BODY, sign(KEY, now, BODY))
        assert not verify(KEY, now, BODY, "")
        assert not verify(KEY, now, BODY, "sha256=")
        assert not verify(KEY, now, BODY, sign(KEY, now, BODY).upper())
