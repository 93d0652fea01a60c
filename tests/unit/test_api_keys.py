"""API keys (digests, scopes, revocation, the key file) and the per-key token bucket."""

from __future__ import annotations

import hashlib
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.api import keys, keystore
from connectors.api.ratelimit import Bucket, Buckets, retry_after

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_a_key_is_stored_as_its_sha256_digest_only() -> None:
    key = keys.new_key()
    assert key.startswith("ryk_") and len(key) > 40
    record = keys.create("prod", ["b", "a", "a"], key, NOW)
    assert record.digest == hashlib.sha256(key.encode()).hexdigest()
    assert record.id == record.digest[:12]
    assert record.sources == ("a", "b")
    assert key not in str(record.to_json())
    assert keys.ApiKey.from_json(record.to_json()) == record


def test_keys_are_random() -> None:
    assert len({keys.new_key() for _ in range(100)}) == 100


def test_find_the_active_key_presented() -> None:
    a, b = keys.new_key(), keys.new_key()
    stored = [keys.create("a", [], a, NOW), keys.create("b", ["svc"], b, NOW)]
    assert keys.find(stored, a) == stored[0]
    found = keys.find(stored, b)
    assert found is not None and found.allowed_sources == frozenset({"svc"})
    assert stored[0].allowed_sources is None
    assert keys.find(stored, "ryk_other") is None
    revoked, count = keys.revoke(stored, "a", NOW)
    assert count == 1 and keys.find(revoked, a) is None and keys.find(revoked, b) is not None
    again, count = keys.revoke(revoked, "a", NOW)
    assert count == 0 and again == revoked
    by_id, count = keys.revoke(stored, stored[1].id, NOW)
    assert count == 1 and not by_id[1].active and by_id[1].revoked_at == NOW


@pytest.mark.parametrize(
    ("header", "key"),
    [
        ("Bearer ryk_x", "ryk_x"),
        ("bearer   ryk_x  ", "ryk_x"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer(header: str | None, key: str | None) -> None:
    assert keys.bearer(header) == key


def test_anonymous_only_on_loopback_with_the_setting_and_no_key() -> None:
    made = [keys.create("a", [], keys.new_key(), NOW)]
    assert keys.anonymous_allowed([], "127.0.0.1", True)
    assert keys.anonymous_allowed([], "::1", True)
    assert not keys.anonymous_allowed([], "127.0.0.1", False)
    assert not keys.anonymous_allowed([], "10.0.0.8", True)
    assert not keys.anonymous_allowed([], None, True)
    assert not keys.anonymous_allowed(made, "127.0.0.1", True)
    revoked, _ = keys.revoke(made, "a", NOW)
    assert keys.anonymous_allowed(revoked, "127.0.0.1", True)


def test_the_key_file_round_trips_privately_and_is_reread_on_change(tmp_path: Path) -> None:
    path = tmp_path / "home" / "api-keys.json"
    live = keystore.KeyFile(path)
    assert keystore.load(path) == [] and live.keys() == []
    record = keys.create("a", ["svc"], keys.new_key(), NOW)
    keystore.save(path, [record])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore.load(path) == [record] == live.keys()
    revoked, _ = keys.revoke([record], "a", NOW)
    keystore.save(path, revoked)
    assert not live.keys()[0].active
    path.unlink()
    assert live.keys() == []


def test_bucket_lets_a_burst_through_then_the_rate() -> None:
    bucket = Bucket.full(rate=10, burst=20, now=0.0)
    assert bucket.take(20, 0.0) == 0
    assert bucket.take(5, 0.0) == pytest.approx(0.5)  # 5 tokens at 10/s
    assert bucket.take(5, 0.5) == 0
    assert bucket.take(1, 0.5) == pytest.approx(0.1)
    assert bucket.take(1, 100.0) == 0
    assert bucket.tokens == 19  # refilled to the burst, never above


def test_a_request_larger_than_the_bucket_waits_for_a_full_bucket_then_owes() -> None:
    bucket = Bucket.full(rate=10, burst=20, now=0.0)
    assert bucket.take(5, 0.0) == 0
    assert bucket.take(50, 0.0) == pytest.approx(0.5)  # until the bucket is full again
    assert bucket.take(50, 0.5) == 0
    assert bucket.tokens == -30
    assert bucket.take(1, 0.5) == pytest.approx(3.1)


def test_a_clock_going_back_changes_nothing() -> None:
    bucket = Bucket.full(rate=10, burst=20, now=5.0)
    bucket.take(20, 5.0)
    assert bucket.take(1, 4.0) == pytest.approx(0.1)


def test_buckets_per_key() -> None:
    buckets = Buckets(rate=1, burst=2)
    assert buckets.take("a", 2, 0.0) == 0
    assert buckets.take("a", 1, 0.0) == pytest.approx(1.0)
    assert buckets.take("b", 2, 0.0) == 0


@pytest.mark.parametrize(("wait", "header"), [(0.01, 1), (1.0, 1), (1.2, 2), (30.0, 30)])
def test_retry_after(wait: float, header: int) -> None:
    assert retry_after(wait) == header
