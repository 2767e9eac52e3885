"""One rate limit per tenant across web processes: two real web servers (the service as
`make run` starts it, and a second gunicorn beside it on the same database) count a
tenant's requests together in Redis."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.config.service import START_TIMEOUT, Service, free_port, wait_for
from tests.conftest import PROJECT_ROOT
from tests.integration.conftest import REDIS_URL, require_redis

pytestmark = pytest.mark.slow

RATE = 10


@pytest.fixture(scope="module")
def key_prefix() -> Iterator[str]:
    """A cache key prefix of this run's own, removed from Redis afterwards."""
    require_redis()
    prefix = f"voiceprint-test-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture(scope="module")
def first(tmp_path_factory, key_prefix) -> Iterator[Service]:
    """`python -m config.serve` (what `make run` runs), one gunicorn worker."""
    service = Service(
        tmp_path_factory.mktemp("shared-rate") / "var",
        extra_env={
            "VOICEPRINT_CACHE_URL": REDIS_URL,
            "VOICEPRINT_CACHE_KEY_PREFIX": key_prefix,
            "VOICEPRINT_RATE_LIMIT": f"{RATE}/hour",
            "VOICEPRINT_WEB_WORKERS": "1",
        },
    )
    service.start(via_make=False)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def second(first) -> Iterator[Service]:
    """A second web server process, gunicorn as config.serve starts it, with the same
    settings and database (owned by the first), on its own port."""
    other = Service(first.var_dir, port=free_port(), extra_env=first.extra_env)
    other.log_path = first.var_dir / "second.log"
    command = [sys.executable, "-m", "gunicorn", "--config", "python:config.gunicorn_conf",
               "--bind", f"127.0.0.1:{other.port}", "config.wsgi:application"]  # fmt: skip
    with open(other.log_path, "ab") as log:
        other.process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=other.env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for(other._ready, START_TIMEOUT, f"the second web server\n{other.log_tail()}")
        yield other
    finally:
        other.stop()


def code(service: Service, token: str) -> int:
    status, body = service.get("/v1/voiceprint/roles", token)
    assert status == 200, (status, body)
    return body["code"]


def test_a_tenant_has_one_limit_across_web_processes(first, second):
    assert first.process.pid != second.process.pid
    busy, quiet = first.create_tenant("busy"), first.create_tenant("quiet")

    codes = [code(server, busy) for server in [first, second] * (RATE // 2)]

    assert codes == [0] * RATE  # half of them on each process
    # Each process alone has seen only RATE / 2 requests; together the tenant is at its limit.
    assert code(first, busy) == 42900
    assert code(second, busy) == 42900
    assert code(first, quiet) == 0 and code(second, quiet) == 0  # another tenant: its own count
