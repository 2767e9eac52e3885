"""A device's identify outcomes over time (voiceprint.selectors.identify_outcome_list):
buckets per hour or per day, every one listed, only the device's, only the tenant's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests import factories as make
from voiceprint.models import IdentifyOutcomeCount
from voiceprint.selectors import identify_outcome_list

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 15, 42, tzinfo=UTC)


def count(device, hours_ago: int, **outcomes) -> None:
    hour = NOW.replace(minute=0) - timedelta(hours=hours_ago)
    IdentifyOutcomeCount.objects.create(device=device, hour=hour, **outcomes)


@pytest.fixture
def device(db):
    tenant = make.tenant()
    dev = make.device(tenant, "hall")
    count(dev, 0, match=2, uncertain=1)
    count(dev, 3, no_match=4)  # 12:00 today
    count(dev, 16, match=1)  # 23:00 yesterday
    count(dev, 24 * 7, match=9)  # a week ago: out of the window
    other = make.device(tenant, "porch")
    count(other, 0, match=5)
    return dev


def test_per_hour_lists_every_hour_oldest_first(device):
    buckets = identify_outcome_list(device.tenant, device=device, days=1, now=NOW)

    assert len(buckets) == 24
    assert buckets[0].start == datetime(2026, 11, 23, 16, tzinfo=UTC)
    assert buckets[-1].start == datetime(2026, 11, 24, 15, tzinfo=UTC)
    assert (buckets[-1].match, buckets[-1].no_match, buckets[-1].uncertain) == (2, 0, 1)
    assert buckets[-4].no_match == 4 and buckets[-4].total == 4
    assert buckets[-17].match == 1
    assert sum(b.total for b in buckets) == 8


def test_per_day_sums_the_hours_of_each_utc_day(device):
    buckets = identify_outcome_list(device.tenant, device=device, bucket="day", now=NOW)

    assert [b.start.day for b in buckets] == [18, 19, 20, 21, 22, 23, 24]
    assert (buckets[-1].match, buckets[-1].no_match, buckets[-1].uncertain) == (2, 4, 1)
    assert buckets[-2].match == 1
    assert sum(b.total for b in buckets[:-2]) == 0  # the week-old hour is out of it


def test_another_tenant_sees_only_zeros(device):
    stranger = make.tenant("globex")
    buckets = identify_outcome_list(stranger, device=device, bucket="day", now=NOW)
    assert len(buckets) == 7 and sum(b.total for b in buckets) == 0
