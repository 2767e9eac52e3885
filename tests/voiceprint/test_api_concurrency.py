"""Device stats and the hourly outcome counts stay exact when identify requests arrive at
the same time (a real server)."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from tests.voiceprint.conftest import create_device, device_stats, enroll_speaker

DEVICE = "dev-a"
REQUESTS = 12
WORKERS = 4


def post_identify(base_url: str, token: str, audio: bytes) -> dict:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request(
            "POST",
            "/v1/voiceprint/voices/identify",
            body=audio,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "audio/wav",
                "X-Device-ID": DEVICE,
            },
        )
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_device_stats_are_exact_under_concurrent_identify(
    live_server, api, tenant_and_token, speech
):
    token = tenant_and_token[1]
    create_device(api, DEVICE)
    enroll_speaker(api, speech, "fangjun", DEVICE)
    enroll_speaker(api, speech, "leijun", DEVICE)
    # Genuine speakers and an unknown one (liudehua), so both counters move.
    probes = [audio for s in ("fangjun", "leijun", "liudehua") for _, audio in speech.test_files(s)]
    bodies = [probes[i % len(probes)] for i in range(REQUESTS)]

    with ThreadPoolExecutor(WORKERS) as pool:
        replies = list(pool.map(lambda b: post_identify(live_server.url, token, b), bodies))

    assert [r["code"] for r in replies] == [0] * REQUESTS, replies
    matched = sum(r["data"]["matched"] for r in replies)
    assert 0 < matched < REQUESTS
    stats = device_stats(api, DEVICE)
    assert stats["identify_count"] == REQUESTS
    assert stats["matched_count"] == matched
    assert stats["last_identify_at"] is not None
    # Every request upserted its outcome into the device's row of the hour: none was lost
    # and none failed on the unique (device, hour), however the first requests raced.
    from voiceprint.models import IdentifyOutcomeCount

    outcomes = Counter(r["data"]["decision"] for r in replies)
    rows = IdentifyOutcomeCount.objects.filter(device__device_id=DEVICE)
    counted = Counter()
    for row in rows:  # more than one row only when the requests straddled an hour
        counted.update(match=row.match, no_match=row.no_match, uncertain=row.uncertain)
    assert +counted == outcomes
    assert outcomes["match"] == matched
