"""Tests for dagu.cron: parsing, fire times in UTC, the DST policy, and a brute-force oracle."""

from __future__ import annotations

import bisect
import random
import time
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import pytest

from dagu import cron
from dagu.cron import CronError, parse

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KATHMANDU = ZoneInfo("Asia/Kathmandu")
ZONES = {
    "America/New_York": NY,
    "Europe/London": LONDON,
    "Australia/Lord_Howe": LORD_HOWE,
    "Asia/Kathmandu": KATHMANDU,
    "UTC": ZoneInfo("UTC"),
}
MINUTE = timedelta(minutes=1)
ALL_MINUTES = set(range(60))
ALL_HOURS = set(range(24))
ALL_DAYS = set(range(1, 32))
ALL_MONTHS = set(range(1, 13))
ALL_WEEKDAYS = set(range(7))


def at(text: str) -> datetime:
    """An aware datetime from ISO text; 'Z' means UTC."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("* * * * *", dict(minutes=ALL_MINUTES, hours=ALL_HOURS, days=ALL_DAYS, day_or=False)),
        ("*/15 * * * *", dict(minutes={0, 15, 30, 45})),
        ("0-10/5 * * * *", dict(minutes={0, 5, 10})),
        ("50/5 * * * *", dict(minutes={50, 55})),
        ("*/100 * * * *", dict(minutes={0})),
        ("1,2,5-7 * * * *", dict(minutes={1, 2, 5, 6, 7})),
        ("05 007 * * *", dict(minutes={5}, hours={7})),
        ("0 9-17/4 * * *", dict(hours={9, 13, 17})),
        ("0 0 1,15 * *", dict(days={1, 15}, weekdays=ALL_WEEKDAYS, day_or=False)),
        ("0 0 * JAN,mar-May *", dict(months={1, 3, 4, 5})),
        ("0 0 * feb/3 *", dict(months={2, 5, 8, 11})),
        ("0 0 * * sun,7", dict(weekdays={0})),
        ("0 0 * * 5-7", dict(weekdays={5, 6, 0})),
        ("0 0 * * 0-7", dict(weekdays=ALL_WEEKDAYS)),
        ("0 0 * * Mon-FRI", dict(weekdays={1, 2, 3, 4, 5})),
        ("0 0 * * */2", dict(weekdays={0, 2, 4, 6})),
        ("0 0 * * 1/2", dict(weekdays={1, 3, 5})),
        ("0 0 * * 7/1", dict(weekdays={0})),
        ("0 0 ? * MON", dict(days=ALL_DAYS, weekdays={1}, day_or=False)),
        ("0 0 1 * ?", dict(days={1}, weekdays=ALL_WEEKDAYS, day_or=False)),
        ("0 0 1 * MON", dict(days={1}, weekdays={1}, day_or=True)),
        ("0 0 */2 * MON", dict(days=set(range(1, 32, 2)), weekdays={1}, day_or=False)),
        ("0 0 1-7 * MON,*", dict(weekdays=ALL_WEEKDAYS, day_or=True)),
        ("0 0 *,1 * MON", dict(day_or=False)),
        ("  0\t0  * * *  ", dict(minutes={0}, hours={0})),
        ("0 0 29 2 *", dict(days={29}, months={2})),
    ],
)
def test_parse_accepts_field_forms(expr, expected):
    schedule = parse(expr, UTC)
    for name, value in expected.items():
        assert getattr(schedule, name) == value, name


@pytest.mark.parametrize(
    "descriptor, equivalent",
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
        ("@DAILY", "0 0 * * *"),
        ("TZ=Asia/Kathmandu @hourly", "CRON_TZ=Asia/Kathmandu 0 * * * *"),
    ],
)
def test_parse_descriptor_means_its_five_fields(descriptor, equivalent):
    got, want = parse(descriptor, UTC), parse(equivalent, UTC)
    assert (got.minutes, got.hours, got.days, got.months, got.weekdays, got.day_or, got.tz) == (
        want.minutes, want.hours, want.days, want.months, want.weekdays, want.day_or, want.tz
    )
    assert got.expression == descriptor


@pytest.mark.parametrize(
    "expr, default_tz, zone",
    [
        ("CRON_TZ=Asia/Kathmandu 0 0 * * *", None, KATHMANDU),
        ("TZ=Europe/London 0 0 * * *", None, LONDON),
        ("CRON_TZ=America/New_York 0 0 * * *", LONDON, NY),
        ("0 0 * * *", LORD_HOWE, LORD_HOWE),
        ("0 0 * * *", UTC, UTC),
        ("0 0 * * *", timezone(timedelta(hours=3)), timezone(timedelta(hours=3))),
    ],
)
def test_parse_zone_prefix_beats_default_zone(expr, default_tz, zone):
    schedule = parse(expr, default_tz)
    assert schedule.tz == zone
    assert schedule.expression == expr


def test_parse_without_any_zone_uses_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    cron.local_zone.cache_clear()
    try:
        assert parse("0 0 * * *").tz == KATHMANDU
    finally:
        cron.local_zone.cache_clear()


def test_parse_keeps_original_text():
    assert parse("  0 0 * * *\n", UTC).expression == "  0 0 * * *\n"


@pytest.mark.parametrize(
    "expr, message",
    [
        ("", "empty cron expression"),
        ("   ", "empty cron expression"),
        ("1", 'expected 5 fields (minute hour day-of-month month day-of-week), got 1 in "1"'),
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("0 * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"),
        ("CRON_TZ=UTC", "got 0"),
        ("60 * * * *", 'minute "60": 60 is out of range 0-59'),
        ("* 24 * * *", 'hour "24": 24 is out of range 0-23'),
        ("* * 0 * *", 'day-of-month "0": 0 is out of range 1-31'),
        ("* * 32 * *", 'day-of-month "32": 32 is out of range 1-31'),
        ("* * * 13 *", 'month "13": 13 is out of range 1-12'),
        ("* * * 0 *", 'month "0": 0 is out of range 1-12'),
        ("* * * * 8", 'day-of-week "8": 8 is out of range 0-7'),
        ("1,70 * * * *", 'minute "1,70": 70 is out of range 0-59'),
        ("0-60/5 * * * *", 'minute "0-60/5": 60 is out of range 0-59'),
        ("*/0 * * * *", 'minute "*/0": step "0" must be a positive integer'),
        ("* */x * * *", 'hour "*/x": step "x" must be a positive integer'),
        ("* 1-5/ * * *", 'hour "1-5/": step "" must be a positive integer'),
        ("1/2/3 * * * *", 'minute "1/2/3": step "2/3" must be a positive integer'),
        ("* */-1 * * *", 'hour "*/-1": step "-1" must be a positive integer'),
        ("5-2 * * * *", 'minute "5-2": range start 5 is greater than end 2'),
        ("* * * DEC-JAN *", 'month "DEC-JAN": range start 12 is greater than end 1'),
        ("* * * * FRI-MON", 'day-of-week "FRI-MON": range start 5 is greater than end 1'),
        ("* * * FOO *", 'month "FOO": invalid value "FOO"'),
        ("* * * JAN-MON *", 'month "JAN-MON": invalid value "MON"'),
        ("* * * * FUNDAY", 'day-of-week "FUNDAY": invalid value "FUNDAY"'),
        ("* * * * JAN", 'day-of-week "JAN": invalid value "JAN"'),
        ("MON * * * *", 'minute "MON": invalid value "MON"'),
        ("1,,2 * * * *", 'minute "1,,2": invalid value ""'),
        ("-1 * * * *", 'minute "-1": invalid value ""'),
        ("1-2-3 * * * *", 'minute "1-2-3": invalid value "2-3"'),
        ("1.5 * * * *", 'minute "1.5": invalid value "1.5"'),
        ("? * * * *", 'minute "?": "?" is allowed only in day-of-month and day-of-week'),
        ("* * * ? *", 'month "?": "?" is allowed only in day-of-month and day-of-week'),
        ("CRON_TZ=Mars/Base * * * * *", 'unknown time zone "Mars/Base"'),
        ("TZ=../etc/passwd * * * * *", 'unknown time zone "../etc/passwd"'),
        ("TZ=America * * * * *", 'unknown time zone "America"'),
        ("@every 5m", 'unknown descriptor "@every 5m"'),
        ("@reboot", 'unknown descriptor "@reboot"'),
        ("0 0 30 2 *", 'day-of-month "30" never occurs in month "2"'),
        ("0 0 31 4,6,9,11 *", 'day-of-month "31" never occurs in month "4,6,9,11"'),
    ],
)
def test_parse_rejects_bad_expression_naming_field_and_value(expr, message):
    with pytest.raises(CronError) as caught:
        parse(expr, UTC)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("expr", ["0 0 30 2 MON", "0 0 29 2 *", "0 0 31 1-4 *"])
def test_parse_accepts_day_combinations_that_occur(expr):
    parse(expr, UTC)


# ---------------------------------------------------------------- UTC fire times


@pytest.mark.parametrize(
    "expr, after, expected",
    [
        ("* * * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"),
        ("* * * * *", "2024-01-01T00:00:30Z", "2024-01-01T00:01:00Z"),
        ("* * * * *", "2024-01-01T00:00:59.999999Z", "2024-01-01T00:01:00Z"),
        ("*/5 * * * *", "2024-01-01T00:03:00Z", "2024-01-01T00:05:00Z"),
        ("*/5 * * * *", "2024-01-01T23:55:00Z", "2024-01-02T00:00:00Z"),
        ("5-10/2 * * * *", "2024-01-01T00:06:00Z", "2024-01-01T00:07:00Z"),
        ("10/20 * * * *", "2024-01-01T00:50:00Z", "2024-01-01T01:10:00Z"),
        ("0 0 * * *", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
        ("15 14 1 * *", "2024-01-31T00:00:00Z", "2024-02-01T14:15:00Z"),
        ("0 0 1 1 *", "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"),
        ("0 0 1 1 *", "2023-12-31T23:59:59.999999Z", "2024-01-01T00:00:00Z"),
        ("59 23 31 12 *", "2024-12-31T23:59:00Z", "2025-12-31T23:59:00Z"),
        ("0 0 31 * *", "2024-04-01T00:00:00Z", "2024-05-31T00:00:00Z"),
        ("0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("0 0 29 2 *", "2097-03-01T00:00:00Z", "2104-02-29T00:00:00Z"),
        ("0 0 29 2 */7", "2088-03-01T00:00:00Z", "2128-02-29T00:00:00Z"),
        ("0 0 1 feb *", "2024-03-01T00:00:00Z", "2025-02-01T00:00:00Z"),
        ("0 9 * * MON-FRI", "2024-01-05T09:00:00Z", "2024-01-08T09:00:00Z"),
        ("0 0 * * 7", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"),
        ("0 0 13 * FRI", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"),
        ("0 0 13 * FRI", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z"),
        ("0 0 */10 * MON", "2024-01-01T00:00:00Z", "2024-03-11T00:00:00Z"),
        ("0 0 ? * MON", "2024-01-01T00:00:00Z", "2024-01-08T00:00:00Z"),
        ("30 12 * * *", "2024-01-01T12:29:59Z", "2024-01-01T12:30:00Z"),
        ("@hourly", "2024-01-01T10:59:59Z", "2024-01-01T11:00:00Z"),
        ("@weekly", "2024-01-06T12:00:00Z", "2024-01-07T00:00:00Z"),
        ("@monthly", "2024-12-15T00:00:00Z", "2025-01-01T00:00:00Z"),
        ("CRON_TZ=Asia/Kathmandu 0 0 * * *", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00+05:45"),
        ("CRON_TZ=Asia/Kathmandu */15 * * * *", "2023-12-31T23:59Z", "2024-01-01T05:45:00+05:45"),
        ("CRON_TZ=Asia/Kathmandu 0 * * * *", "2024-01-01T00:00:00Z", "2024-01-01T06:00:00+05:45"),
    ],
)
def test_next_fire_in_fixed_offset_zones(expr, after, expected):
    got = parse(expr, UTC).next_fire(at(after))
    assert got == at(expected)
    assert got.utcoffset() == at(expected).utcoffset()


@pytest.mark.parametrize(
    "expr, before, expected",
    [
        ("* * * * *", "2024-01-01T00:00:30Z", "2024-01-01T00:00:00Z"),
        ("* * * * *", "2024-01-01T00:00:00Z", "2023-12-31T23:59:00Z"),
        ("*/5 * * * *", "2024-01-01T00:03:00Z", "2024-01-01T00:00:00Z"),
        ("0 0 1 1 *", "2024-01-01T00:00:00Z", "2023-01-01T00:00:00Z"),
        ("0 0 1 1 *", "2024-01-01T00:00:00.000001Z", "2024-01-01T00:00:00Z"),
        ("0 9 * * MON-FRI", "2024-01-08T09:00:00Z", "2024-01-05T09:00:00Z"),
        ("0 0 29 2 *", "2024-02-29T00:00:00Z", "2020-02-29T00:00:00Z"),
        ("0 0 29 2 */7", "2128-02-29T00:00:00Z", "2088-02-29T00:00:00Z"),
        ("0 0 31 * *", "2024-05-01T00:00:00Z", "2024-03-31T00:00:00Z"),
        ("0 0 13 * FRI", "2024-01-13T00:00:00Z", "2024-01-12T00:00:00Z"),
        ("59 23 * * *", "2024-03-01T00:00:00Z", "2024-02-29T23:59:00Z"),
        ("CRON_TZ=Asia/Kathmandu 0 0 * * *", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+05:45"),
    ],
)
def test_prev_fire_in_fixed_offset_zones(expr, before, expected):
    assert parse(expr, UTC).prev_fire(at(before)) == at(expected)


def test_fire_times_are_in_schedule_zone_whatever_zone_is_asked():
    schedule = parse("0 12 * * *", NY)
    got = schedule.next_fire(datetime(2024, 6, 1, 20, 0, tzinfo=KATHMANDU))
    assert got.tzinfo is NY and got == at("2024-06-01T12:00:00-04:00")
    assert schedule.prev_fire(got).tzinfo is NY


@pytest.mark.parametrize(
    "method, when",
    [
        ("next_fire", datetime(9999, 6, 1, tzinfo=UTC)),
        ("next_fire", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("prev_fire", datetime(1, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_fire_times_beyond_datetime_range_raise(method, when):
    with pytest.raises(ValueError, match="no fire time"):
        getattr(parse("0 0 1 1 *", UTC), method)(when)


def test_second_occurrence_given_as_zoneinfo_fold_is_honoured():
    schedule = parse("*/20 1 * * *", NY)
    second = datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=NY)
    assert schedule.next_fire(second).isoformat() == "2024-11-04T01:00:00-05:00"
    assert schedule.prev_fire(second).isoformat() == "2024-11-03T01:40:00-04:00"


def test_local_zone_falls_back_to_a_fixed_offset_for_unknown_tz(monkeypatch):
    monkeypatch.setenv("TZ", "Not/AZone")
    cron.local_zone.cache_clear()
    try:
        assert cron.local_zone().utcoffset(datetime(2024, 1, 1)) is not None
    finally:
        cron.local_zone.cache_clear()


@pytest.mark.parametrize("method", ["next_fire", "prev_fire"])
def test_fire_times_reject_naive_datetime(method):
    with pytest.raises(ValueError, match="aware"):
        getattr(parse("* * * * *", UTC), method)(datetime(2024, 1, 1))


# ---------------------------------------------------------------- DST policy

DST_NEXT = [
    # America/New_York 2024-03-10: 02:00 EST jumps to 03:00 EDT.
    ("America/New_York", "30 2 * * *", "2024-03-10T00:00-05:00", "2024-03-10T03:30-04:00"),
    ("America/New_York", "30 2 * * *", "2024-03-10T03:30-04:00", "2024-03-11T02:30-04:00"),
    ("America/New_York", "0 2 * * *", "2024-03-10T01:59-05:00", "2024-03-10T03:00-04:00"),
    ("America/New_York", "59 2 * * *", "2024-03-10T00:00-05:00", "2024-03-10T03:59-04:00"),
    ("America/New_York", "15 2 * * *", "2024-03-10T03:10-04:00", "2024-03-10T03:15-04:00"),
    ("America/New_York", "30 2,3 * * *", "2024-03-10T00:00-05:00", "2024-03-10T03:30-04:00"),
    ("America/New_York", "30 2,3 * * *", "2024-03-10T03:30-04:00", "2024-03-11T02:30-04:00"),
    ("America/New_York", "0 * * * *", "2024-03-10T01:00-05:00", "2024-03-10T03:00-04:00"),
    ("America/New_York", "0 * * * *", "2024-03-10T03:00-04:00", "2024-03-10T04:00-04:00"),
    ("America/New_York", "*/30 * * * *", "2024-03-10T01:30-05:00", "2024-03-10T03:00-04:00"),
    ("America/New_York", "*/30 * * * *", "2024-03-10T03:00-04:00", "2024-03-10T03:30-04:00"),
    ("America/New_York", "30 3 * * *", "2024-03-10T01:00-05:00", "2024-03-10T03:30-04:00"),
    # America/New_York 2024-11-03: 02:00 EDT falls back to 01:00 EST.
    ("America/New_York", "30 1 * * *", "2024-11-03T00:00-04:00", "2024-11-03T01:30-04:00"),
    ("America/New_York", "30 1 * * *", "2024-11-03T01:30-04:00", "2024-11-04T01:30-05:00"),
    ("America/New_York", "30 1 * * *", "2024-11-03T01:10-05:00", "2024-11-04T01:30-05:00"),
    ("America/New_York", "0 * * * *", "2024-11-03T00:30-04:00", "2024-11-03T01:00-04:00"),
    ("America/New_York", "0 * * * *", "2024-11-03T01:00-04:00", "2024-11-03T02:00-05:00"),
    ("America/New_York", "0 * * * *", "2024-11-03T01:00-05:00", "2024-11-03T02:00-05:00"),
    ("America/New_York", "*/20 1 * * *", "2024-11-03T01:40-04:00", "2024-11-04T01:00-05:00"),
    ("America/New_York", "0,30 * * * *", "2024-11-03T01:15-05:00", "2024-11-03T02:00-05:00"),
    ("America/New_York", "0 2 * * *", "2024-11-03T01:30-05:00", "2024-11-03T02:00-05:00"),
    # Europe/London: 01:00 GMT jumps to 02:00 BST; 02:00 BST falls back to 01:00 GMT.
    ("Europe/London", "30 1 * * *", "2024-03-31T00:00+00:00", "2024-03-31T02:30+01:00"),
    ("Europe/London", "0 1 * * SUN", "2024-03-30T00:00+00:00", "2024-03-31T02:00+01:00"),
    ("Europe/London", "30 1 * * *", "2024-10-27T00:00+01:00", "2024-10-27T01:30+01:00"),
    ("Europe/London", "30 1 * * *", "2024-10-27T01:30+01:00", "2024-10-28T01:30+00:00"),
    ("Europe/London", "0 * * * *", "2024-10-27T01:00+01:00", "2024-10-27T02:00+00:00"),
    # Australia/Lord_Howe: 02:00 +10:30 jumps to 02:30 +11; 02:00 +11 falls back to 01:30 +10:30.
    ("Australia/Lord_Howe", "15 2 * * *", "2024-10-06T00:00+10:30", "2024-10-06T02:45+11:00"),
    ("Australia/Lord_Howe", "*/10 2 * * *", "2024-10-06T01:55+10:30", "2024-10-06T02:30+11:00"),
    ("Australia/Lord_Howe", "*/10 2 * * *", "2024-10-06T02:30+11:00", "2024-10-06T02:40+11:00"),
    ("Australia/Lord_Howe", "*/10 2 * * *", "2024-10-06T02:50+11:00", "2024-10-07T02:00+11:00"),
    ("Australia/Lord_Howe", "10,35 2 * * *", "2024-10-06T01:00+10:30", "2024-10-06T02:35+11:00"),
    ("Australia/Lord_Howe", "10,35 2 * * *", "2024-10-06T02:35+11:00", "2024-10-06T02:40+11:00"),
    ("Australia/Lord_Howe", "10,35 2 * * *", "2024-10-06T02:40+11:00", "2024-10-07T02:10+11:00"),
    ("Australia/Lord_Howe", "45 1 * * *", "2024-04-07T00:00+11:00", "2024-04-07T01:45+11:00"),
    ("Australia/Lord_Howe", "45 1 * * *", "2024-04-07T01:45+11:00", "2024-04-08T01:45+10:30"),
    ("Australia/Lord_Howe", "0,30 * * * *", "2024-04-07T01:30+11:00", "2024-04-07T02:00+10:30"),
]

DST_PREV = [
    ("America/New_York", "30 2 * * *", "2024-03-10T04:00-04:00", "2024-03-10T03:30-04:00"),
    ("America/New_York", "15 2 * * *", "2024-03-10T03:20-04:00", "2024-03-10T03:15-04:00"),
    ("America/New_York", "0 * * * *", "2024-03-10T03:30-04:00", "2024-03-10T03:00-04:00"),
    ("America/New_York", "0 * * * *", "2024-03-10T03:00-04:00", "2024-03-10T01:00-05:00"),
    ("America/New_York", "30 2,3 * * *", "2024-03-11T00:00-04:00", "2024-03-10T03:30-04:00"),
    ("America/New_York", "30 2,3 * * *", "2024-03-10T03:30-04:00", "2024-03-09T03:30-05:00"),
    ("America/New_York", "30 1 * * *", "2024-11-03T02:00-05:00", "2024-11-03T01:30-04:00"),
    ("America/New_York", "0 * * * *", "2024-11-03T02:00-05:00", "2024-11-03T01:00-04:00"),
    ("America/New_York", "0 * * * *", "2024-11-03T01:30-05:00", "2024-11-03T01:00-04:00"),
    ("America/New_York", "50 1 * * *", "2024-11-03T01:45-05:00", "2024-11-03T01:50-04:00"),
    ("Europe/London", "30 1 * * *", "2024-03-31T03:00+01:00", "2024-03-31T02:30+01:00"),
    ("Europe/London", "30 1 * * *", "2024-10-28T00:00+00:00", "2024-10-27T01:30+01:00"),
    ("Australia/Lord_Howe", "*/10 2 * * *", "2024-10-06T02:40+11:00", "2024-10-06T02:30+11:00"),
    ("Australia/Lord_Howe", "*/10 2 * * *", "2024-10-06T02:30+11:00", "2024-10-05T02:50+10:30"),
    ("Australia/Lord_Howe", "45 1 * * *", "2024-04-08T00:00+10:30", "2024-04-07T01:45+11:00"),
    ("Australia/Lord_Howe", "10,35 2 * * *", "2024-10-06T02:45+11:00", "2024-10-06T02:40+11:00"),
    ("Australia/Lord_Howe", "10,35 2 * * *", "2024-10-06T03:05+11:00", "2024-10-06T02:40+11:00"),
    ("Australia/Lord_Howe", "10,35 2 * * *", "2024-10-06T02:40+11:00", "2024-10-06T02:35+11:00"),
    ("Australia/Lord_Howe", "10,35 2 * * *", "2024-10-06T02:35+11:00", "2024-10-05T02:35+10:30"),
]


@pytest.mark.parametrize("zone, expr, after, expected", DST_NEXT)
def test_next_fire_follows_dst_policy(zone, expr, after, expected):
    got = parse(expr, ZONES[zone]).next_fire(at(after))
    assert got.isoformat() == at(expected).isoformat()


@pytest.mark.parametrize("zone, expr, before, expected", DST_PREV)
def test_prev_fire_follows_dst_policy(zone, expr, before, expected):
    got = parse(expr, ZONES[zone]).prev_fire(at(before))
    assert got.isoformat() == at(expected).isoformat()


# ---------------------------------------------------------------- brute-force oracle


def brute_fires(matches, tz, start: datetime, end: datetime) -> list[datetime]:
    """Every fire instant in [start, end), scanning UTC minutes and applying the DST policy.

    Instant t fires when its own wall time matches (unless that wall time is a repeat, i.e. t
    lies within a fall-back's length after the fall-back), or when t lies within a jump's length
    after a spring-forward and the skipped wall time that maps onto t (t read with the offset
    before the jump) matches.
    """
    fires = []
    t = start - timedelta(hours=3)  # catch a transition that began before `start`
    prev_offset = (t - MINUTE).astimezone(tz).utcoffset()
    repeat_until = shifted_until = t
    pre_jump_offset = prev_offset
    while t < end:
        local = t.astimezone(tz)  # its fields are t's wall time
        offset = local.utcoffset()
        if offset > prev_offset:
            shifted_until, pre_jump_offset = t + (offset - prev_offset), prev_offset
        elif offset < prev_offset:
            repeat_until = t + (prev_offset - offset)
        if t >= start:
            if t >= repeat_until and matches(local):
                fires.append(t)
            elif t < shifted_until and matches(t + pre_jump_offset):  # fields = skipped wall
                fires.append(t)
        prev_offset = offset
        t += MINUTE
    return fires


def spec_matcher(minutes, hours, days, months, weekdays, day_or):
    """Wall-time predicate for the given field sets, written independently of dagu.cron."""

    def matches(w: datetime) -> bool:
        if w.minute not in minutes or w.hour not in hours or w.month not in months:
            return False
        weekday = w.isoweekday() % 7
        if day_or:
            return w.day in days or weekday in weekdays
        return w.day in days and weekday in weekdays

    return matches


def random_field(rng: random.Random, lo, hi, open_hi, pool, names=None):
    """A random field text and the set it means (before mapping weekday 7 to 0)."""
    pick = lambda: rng.choice(pool) if rng.random() < 0.6 else rng.randint(lo, hi)  # noqa: E731

    def render(v):
        if names and v < len(names) and rng.random() < 0.3:
            name = names[v]
            return name.lower() if rng.random() < 0.5 else name
        return str(v)

    def item():
        kind = rng.choice(["value", "range", "range_step", "open_step"])
        a = pick()
        if kind == "value":
            return render(a), {a}
        b = rng.randint(a, min(hi, a + rng.randint(0, hi - lo)))
        if kind == "range":
            return f"{render(a)}-{render(b)}", set(range(a, b + 1))
        n = rng.randint(1, max(1, (hi - lo) // 2))
        if kind == "range_step":
            return f"{render(a)}-{render(b)}/{n}", set(range(a, b + 1, n))
        return f"{render(a)}/{n}", set(range(a, max(open_hi, a) + 1, n))

    roll = rng.random()
    if roll < 0.3:
        return "*", set(range(lo, open_hi + 1)), True
    if roll < 0.4:
        n = rng.randint(2, max(2, (hi - lo) // 2))
        return f"*/{n}", set(range(lo, open_hi + 1, n)), True
    texts, values = [], set()
    for _ in range(rng.choice([1, 1, 2, 3])):
        text, vals = item()
        texts.append(text)
        values |= vals
    return ",".join(texts), values, False


MONTH_NAMES = [""] + "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAY_NAMES = "SUN MON TUE WED THU FRI SAT".split()


def random_schedule(rng: random.Random):
    """A random expression (biased towards DST-relevant hours) and its independent matcher."""
    minute, minutes, _ = random_field(rng, 0, 59, 59, [0, 15, 29, 30, 45, 59])
    hour, hours, _ = random_field(rng, 0, 23, 23, [0, 1, 2, 3])
    if rng.random() < 0.6:
        dom, days, dom_star = rng.choice(["*", "?"]), set(range(1, 32)), True
    else:
        dom, days, dom_star = random_field(rng, 1, 31, 31, [1, 6, 7, 27, 28, 31])
    if rng.random() < 0.7:
        month, months = "*", set(range(1, 13))
    else:
        month, months, _ = random_field(rng, 1, 12, 12, [3, 4, 10, 11], MONTH_NAMES)
    if rng.random() < 0.5:
        dow, weekdays, dow_star = "*", set(range(7)), True
    else:
        dow, weekdays, dow_star = random_field(rng, 0, 7, 6, [0, 6, 7], DAY_NAMES)
    weekdays = {v % 7 for v in weekdays}
    day_or = not (dom_star or dow_star)
    if not day_or and not any(d <= (29 if m == 2 else 30 if m in (4, 6, 9, 11) else 31)
                              for m in months for d in days):
        return random_schedule(rng)  # never fires; parse rejects it
    expr = f"{minute} {hour} {dom} {month} {dow}"
    fields = (minutes, hours, days, months, weekdays, day_or)
    return expr, fields, spec_matcher(*fields)


@lru_cache(maxsize=None)
def transitions(tz, year: int) -> tuple[datetime, ...]:
    """Approximate (to the half hour) UTC instants where the zone's offset changes in `year`."""
    found, t = [], datetime(year, 1, 1, tzinfo=UTC)
    prev = t.astimezone(tz).utcoffset()
    while t.year == year:
        offset = t.astimezone(tz).utcoffset()
        if offset != prev:
            found.append(t)
        prev, t = offset, t + timedelta(minutes=30)
    return tuple(found)


def random_centre(rng: random.Random, tz) -> datetime:
    """A minute in 2024, usually within a day of one of the zone's DST transitions."""
    changes = transitions(tz, 2024)
    if changes and rng.random() < 0.75:
        return rng.choice(changes) + timedelta(minutes=rng.randint(-1000, 1000))
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 366 * 1440 - 1))


def query_points(rng: random.Random, tz, fires, start, end) -> list[datetime]:
    """Instants to ask about: fire times, random minutes, and a sweep around each transition."""
    span = int((end - start) / MINUTE)
    points = [rng.choice(fires) for _ in range(3)] if fires else []
    points += [start + timedelta(minutes=rng.randint(0, span - 1)) for _ in range(4)]
    for change in transitions(tz, 2024):
        if start + timedelta(hours=2) < change < end - timedelta(hours=2):
            points += [change + timedelta(minutes=m) for m in range(-75, 76, rng.randint(2, 4))]
    return [p + timedelta(seconds=rng.choice([0, 0, 1, 30, 59])) for p in points]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("zone", sorted(ZONES))
def test_fire_times_equal_brute_force_for_random_schedules(zone, seed):
    tz = ZONES[zone]
    rng = random.Random(f"{zone}/{seed}")
    for _ in range(12):
        expr, fields, matches = random_schedule(rng)
        schedule = parse(expr, tz)
        assert (schedule.minutes, schedule.hours, schedule.days, schedule.months,
                schedule.weekdays, schedule.day_or) == fields, expr
        centre = random_centre(rng, tz)
        start, end = centre - timedelta(hours=20), centre + timedelta(hours=20)
        fires = brute_fires(matches, tz, start, end)
        for q in query_points(rng, tz, fires, start, end):
            later = bisect.bisect_right(fires, q)
            got = schedule.next_fire(q).astimezone(UTC)
            want_next = fires[later] if later < len(fires) else None
            assert got == want_next if want_next else got >= end, (expr, zone, q.isoformat())
            earlier = bisect.bisect_left(fires, q)
            got = schedule.prev_fire(q).astimezone(UTC)
            want_prev = fires[earlier - 1] if earlier else None
            assert got == want_prev if want_prev else got < start, (expr, zone, q.isoformat())


CHAIN_SCHEDULES = ["* * * * *", "*/15 * * * *", "30 2 * * *", "0,30 1-3 * * *", "45 1,2 * * *",
                   "*/10 2 * * *", "0 * * * *", "59 0-3 * * *", "10,35 2 * * *", "5,50 1-3 * * *"]


@pytest.mark.parametrize("expr", CHAIN_SCHEDULES)
@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Australia/Lord_Howe"])
def test_chained_fires_across_transitions_equal_brute_force(zone, expr):
    tz = ZONES[zone]
    schedule = parse(expr, tz)
    matches = spec_matcher(schedule.minutes, schedule.hours, ALL_DAYS, ALL_MONTHS,
                           ALL_WEEKDAYS, False)
    for change in transitions(tz, 2024):
        start, end = change - timedelta(hours=6), change + timedelta(hours=6)
        expected = brute_fires(matches, tz, start, end)
        forward, t = [], start - timedelta(seconds=1)
        while (t := schedule.next_fire(t).astimezone(UTC)) < end:
            forward.append(t)
        backward, t = [], end
        while (t := schedule.prev_fire(t).astimezone(UTC)) >= start:
            backward.append(t)
        assert forward == expected
        assert backward[::-1] == expected
        assert len(set(forward)) == len(forward)


# ---------------------------------------------------------------- speed


def test_next_fire_is_fast_over_a_month_with_a_dst_change():
    schedule = parse("*/5 * * * *", NY)
    t, calls = datetime(2024, 3, 1, tzinfo=NY), 0
    began = time.perf_counter()
    while t < datetime(2024, 4, 1, tzinfo=NY):
        t, calls = schedule.next_fire(t), calls + 1
    per_call = (time.perf_counter() - began) / calls
    assert calls == 31 * 288 - 12  # one hour skipped on 2024-03-10
    assert per_call < 1e-3, f"{per_call * 1e6:.0f} µs per call"
