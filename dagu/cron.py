"""Cron expressions: parse five-field schedules and find their fire times in a time zone.

Syntax: ``minute hour day-of-month month day-of-week``. Each field takes ``*``, lists
``a,b``, ranges ``a-b`` and steps ``*/n``, ``a-b/n`` and ``a/n`` (meaning ``a-max/n``).
Months may be named JAN-DEC and weekdays SUN-SAT (any case); day-of-week is 0-7 with 0 and 7
both Sunday (an open range such as ``*/2`` or ``1/2`` stops at 6, as in robfig/cron); ``?``
means ``*`` in the two day fields. Descriptors: @yearly @annually @monthly @weekly @daily
@midnight @hourly. A ``CRON_TZ=Zone `` or ``TZ=Zone `` prefix sets the zone. As in Vixie cron,
when both day fields are restricted (neither starts with ``*`` or ``?``) a day matches if
either field matches; otherwise both must.

DST policy. A schedule matches local wall-clock minutes in its zone, and every matching wall
time W fires at exactly one instant:

* W happens once: it fires then.
* W happens twice (clocks set back): it fires at its first occurrence only (``fold=0``), so
  ``0 * * * *`` fires once, not twice, at 01:00 on a fall-back night.
* W never happens (clocks jump forward over it): it fires at W read with the offset in force
  before the jump, i.e. shifted forward by the gap: ``30 2 * * *`` on America/New_York's
  2024-03-10 fires at 03:30-04:00. This is exactly what ``zoneinfo`` gives for ``fold=0``.

No instant fires twice: when a shifted time coincides with a real matching time (``30 2,3 * * *``
that night) it fires once. The rules hold for any offset (Lord Howe's 30-minute shift,
Kathmandu's +05:45). Assumed: a zone's offset changes at most once within any 24 hours.
Compare fire times as instants (e.g. in UTC): Python's ``==`` between aware datetimes of
different zones is always False when one of them is an ambiguous or skipped wall time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo

__all__ = ["CronError", "CronSchedule", "parse", "local_zone"]

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
ZERO = timedelta(0)
_SEARCH_YEARS = 400  # the calendar repeats every 400 years, so a satisfiable schedule fires

_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, {
    n: i for i, n in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)
}, {n: i for i, n in enumerate("SUN MON TUE WED THU FRI SAT".split())})
_MAX_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}


class CronError(ValueError):
    """A cron expression that cannot be parsed."""


class _Values:
    """The allowed values of one field, with O(1) next-at-or-above / previous-at-or-below."""

    __slots__ = ("_hi", "_up", "_down")

    def __init__(self, values: set[int], hi: int) -> None:
        self._hi = hi
        up: list[int | None] = [None] * (hi + 1)
        down: list[int | None] = [None] * (hi + 1)
        nearest: int | None = None
        for v in range(hi, -1, -1):
            nearest = v if v in values else nearest
            up[v] = nearest
        nearest = None
        for v in range(hi + 1):
            nearest = v if v in values else nearest
            down[v] = nearest
        self._up, self._down = tuple(up), tuple(down)

    def up(self, v: int) -> int | None:
        """Smallest allowed value >= v."""
        return self._up[v] if v <= self._hi else None

    def down(self, v: int) -> int | None:
        """Largest allowed value <= v."""
        return self._down[min(v, self._hi)] if v >= 0 else None


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression bound to a time zone."""

    expression: str
    tz: tzinfo
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_or: bool  # both day fields restricted: a day matches if either does
    _lookups: tuple[_Values, _Values, _Values] = field(repr=False, compare=False)

    def next_fire(self, after: datetime) -> datetime:
        """First fire time strictly after the aware datetime `after`, in the schedule's zone."""
        return self._result(self._next_instant, after)

    def prev_fire(self, before: datetime) -> datetime:
        """Last fire time strictly before the aware datetime `before`, in the schedule's zone."""
        return self._result(self._prev_instant, before)

    def _result(self, search: Callable[[datetime], datetime | None], when: datetime) -> datetime:
        try:
            found = search(_as_utc(when))
        except OverflowError:
            found = None
        if found is None:
            raise ValueError(f"schedule {self.expression!r} has no fire time in range")
        return found.astimezone(self.tz)

    def _next_instant(self, a: datetime) -> datetime | None:
        """First fire instant after UTC instant `a`."""
        first_after = self._wall(a) + MINUTE  # real walls from here on fire after `a`
        # Just after a jump, a skipped wall fires shifted forward, maybe after `a` though it
        # precedes `a`'s wall time: start one jump-length back.
        w = self._next_wall(first_after - max(self._recent_shift(a), ZERO))
        best = None
        while w is not None:
            t, shift = self._instant(w)
            if t > a:
                best = t if best is None or t < best else best
                if shift <= ZERO:
                    break  # walls after a wall that happens fire later, skipped ones included
                # Real walls just after a gap fire at the same instants as the gap's shifted
                # walls, so the first real one after the gap may still fire sooner.
                w = self._next_wall(max(self._region_end(w, shift), first_after))
            elif shift < ZERO:
                # A repeated wall whose first occurrence has passed, like the rest of the repeat.
                w = self._next_wall(self._region_end(w, -shift))
            else:
                w = self._next_wall(w + MINUTE if shift else max(w + MINUTE, first_after))
        return best

    def _prev_instant(self, b: datetime) -> datetime | None:
        """Last fire instant before UTC instant `b`."""
        last = self._wall(b)
        repeat = -self._recent_shift(b)
        if repeat > ZERO:
            # Walls repeat after a fall-back: the rest of the repeat fired at its first
            # occurrence, before `b`, even though it lies after `b`'s wall time.
            last = self._region_end(last, repeat) - MINUTE
        w = self._prev_wall(last)
        best = limit = None
        while w is not None and (limit is None or w > limit):
            t, shift = self._instant(w)
            if t < b:
                best = t if best is None or t > best else best
                jump = ZERO if shift else self._recent_shift(t)
                if jump <= ZERO:
                    break  # walls before it fire earlier
                # t lies less than a jump-length after a jump: walls skipped by the jump fire
                # shifted onto t's neighbourhood, and one up to a jump-length earlier than w
                # may fire after t. Look at the last skipped walls.
                limit = w - jump
                w = self._prev_wall(self._region_end(limit, jump) - MINUTE)
            elif shift > ZERO:
                # A skipped wall firing at or after `b`: go to the last skipped wall that
                # would fire before `b` (read with the same pre-jump offset).
                offset = w - t.replace(tzinfo=None)
                cutoff = (b.replace(tzinfo=None) + offset).replace(second=0, microsecond=0)
                w = self._prev_wall(min(w - MINUTE, cutoff))
            else:
                w = self._prev_wall(w - MINUTE)
        return best

    def _wall(self, t: datetime) -> datetime:
        """Naive local wall time of instant `t`, truncated to the minute."""
        return t.astimezone(self.tz).replace(tzinfo=None, second=0, microsecond=0, fold=0)

    def _recent_shift(self, t: datetime) -> timedelta:
        """The offset change (+ jump, - fall-back) if one happened less than its size before t."""
        now = t.astimezone(self.tz).utcoffset()
        change = now - (t - DAY).astimezone(self.tz).utcoffset()
        if not change or (t - abs(change)).astimezone(self.tz).utcoffset() == now:
            return ZERO
        return change

    def _instant(self, wall: datetime) -> tuple[datetime, timedelta]:
        """The UTC instant a wall time fires at, and its shift: > 0 skipped, < 0 repeated."""
        # fold=0 picks the first occurrence of a repeated time and, for a skipped time, the
        # offset before the jump; fold=1 picks the second occurrence / the offset after it.
        first = wall.replace(tzinfo=self.tz).utcoffset()
        second = wall.replace(tzinfo=self.tz, fold=1).utcoffset()
        return (wall - first).replace(tzinfo=timezone.utc), second - first

    def _region_end(self, wall: datetime, size: timedelta) -> datetime:
        """First wall time after a skipped or repeated `wall` that happens exactly once."""
        lo, hi = 0, -(-size // MINUTE)  # the region is `size` long, so wall + size is past it
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if self._happens_once(wall + mid * MINUTE) else (mid, hi)
        return wall + hi * MINUTE

    def _happens_once(self, wall: datetime) -> bool:
        return wall.replace(tzinfo=self.tz).utcoffset() == wall.replace(
            tzinfo=self.tz, fold=1).utcoffset()

    def _day_matches(self, day: int, weekday: int) -> bool:
        if self.day_or:
            return day in self.days or weekday in self.weekdays
        return day in self.days and weekday in self.weekdays

    def _next_day(self, y: int, m: int, d: int) -> int | None:
        """First matching day >= d in month m of year y."""
        last = _days_in_month(y, m)
        weekday = date(y, m, d).isoweekday() % 7 if d <= last else 0
        for day in range(d, last + 1):
            if self._day_matches(day, weekday):
                return day
            weekday = (weekday + 1) % 7
        return None

    def _prev_day(self, y: int, m: int, d: int) -> int | None:
        """Last matching day <= d in month m of year y."""
        d = min(d, _days_in_month(y, m))
        weekday = date(y, m, d).isoweekday() % 7 if d >= 1 else 0
        for day in range(d, 0, -1):
            if self._day_matches(day, weekday):
                return day
            weekday = (weekday - 1) % 7
        return None

    def _next_wall(self, start: datetime) -> datetime | None:
        """First matching wall time at or after `start`, jumping field by field."""
        minutes, hours, months = self._lookups
        y, mo, d, h, mi = start.year, start.month, start.day, start.hour, start.minute
        while y <= min(start.year + _SEARCH_YEARS, 9999):
            m2 = months.up(mo)
            if m2 is None:
                y, mo, d, h, mi = y + 1, 1, 1, 0, 0
                continue
            if m2 != mo:
                mo, d, h, mi = m2, 1, 0, 0
            d2 = self._next_day(y, mo, d)
            if d2 is None:
                mo, d, h, mi = mo + 1, 1, 0, 0
                continue
            if d2 != d:
                d, h, mi = d2, 0, 0
            h2 = hours.up(h)
            if h2 is None:
                d, h, mi = d + 1, 0, 0
                continue
            if h2 != h:
                h, mi = h2, 0
            m3 = minutes.up(mi)
            if m3 is None:
                h, mi = h + 1, 0
                continue
            return datetime(y, mo, d, h, m3)
        return None

    def _prev_wall(self, start: datetime) -> datetime | None:
        """Last matching wall time at or before `start`, jumping field by field."""
        minutes, hours, months = self._lookups
        y, mo, d, h, mi = start.year, start.month, start.day, start.hour, start.minute
        while y >= max(start.year - _SEARCH_YEARS, 1):
            m2 = months.down(mo)
            if m2 is None:
                y, mo, d, h, mi = y - 1, 12, 31, 23, 59
                continue
            if m2 != mo:
                mo, d, h, mi = m2, 31, 23, 59
            d2 = self._prev_day(y, mo, d)
            if d2 is None:
                mo, d, h, mi = mo - 1, 31, 23, 59
                continue
            if d2 != d:
                d, h, mi = d2, 23, 59
            h2 = hours.down(h)
            if h2 is None:
                d, h, mi = d - 1, 23, 59
                continue
            if h2 != h:
                h, mi = h2, 59
            m3 = minutes.down(mi)
            if m3 is None:
                h, mi = h - 1, 59
                continue
            return datetime(y, mo, d, h, m3)
        return None


def parse(expr: str, default_tz: tzinfo | None = None) -> CronSchedule:
    """Parse a cron expression; its zone is CRON_TZ=/TZ=, else `default_tz`, else local."""
    text = expr.strip()
    if not text:
        raise CronError("empty cron expression")
    tz, body = None, text
    for prefix in ("CRON_TZ=", "TZ="):
        if text.startswith(prefix):
            name, _, body = text[len(prefix):].replace("\t", " ").partition(" ")
            tz = _zone(name)
            break
    body = body.strip()
    if body.startswith("@"):
        if body.lower() not in _DESCRIPTORS:
            raise CronError(f'unknown descriptor "{body}" (want one of {", ".join(_DESCRIPTORS)})')
        body = _DESCRIPTORS[body.lower()]
    parts = body.split()
    if len(parts) != 5:
        raise CronError(
            f'expected 5 fields (minute hour day-of-month month day-of-week), '
            f'got {len(parts)} in "{text}"'
        )
    sets = [_parse_field(part, i) for i, part in enumerate(parts)]
    dom_star, dow_star = (parts[i][0] in "*?" for i in (2, 4))
    weekdays = {v % 7 for v in sets[4]}
    _check_satisfiable(sets[2], sets[3], dom_star or dow_star, parts)
    if tz is None:
        tz = default_tz if default_tz is not None else local_zone()
    return CronSchedule(
        expression=expr,
        tz=tz,
        minutes=frozenset(sets[0]),
        hours=frozenset(sets[1]),
        days=frozenset(sets[2]),
        months=frozenset(sets[3]),
        weekdays=frozenset(weekdays),
        day_or=not (dom_star or dow_star),
        _lookups=(_Values(sets[0], 59), _Values(sets[1], 23), _Values(sets[3], 12)),
    )


def _parse_field(text: str, index: int) -> set[int]:
    """The values one field allows, e.g. "1-10/3,15" -> {1, 4, 7, 10, 15}."""
    values: set[int] = set()
    for part in text.split(","):
        values |= _parse_part(part, index, text)
    return values


def _parse_part(part: str, index: int, text: str) -> set[int]:
    """The values one comma-separated item of a field allows."""
    name, (lo, hi) = _FIELD_NAMES[index], _BOUNDS[index]
    open_hi = 6 if index == 4 else hi

    def fail(problem: str) -> CronError:
        return CronError(f'{name} "{text}": {problem}')

    def value(token: str) -> int:
        key = token.upper()
        if key in _NAMES[index]:
            return _NAMES[index][key]
        if not (token.isascii() and token.isdigit()):
            raise fail(f'invalid value "{token}"')
        if not lo <= int(token) <= hi:
            raise fail(f"{int(token)} is out of range {lo}-{hi}")
        return int(token)

    base, slash, step_text = part.partition("/")
    if base in ("*", "?"):
        if base == "?" and index not in (2, 4):
            raise fail('"?" is allowed only in day-of-month and day-of-week')
        start, end = lo, open_hi
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = value(first), value(last)
        if start > end:
            raise fail(f"range start {start} is greater than end {end}")
    else:
        start = value(base)
        end = max(open_hi, start) if slash else start
    if not slash:
        return set(range(start, end + 1))
    if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
        raise fail(f'step "{step_text}" must be a positive integer')
    return set(range(start, end + 1, int(step_text)))


def _check_satisfiable(days: set[int], months: set[int], day_and: bool, parts: list[str]) -> None:
    """Reject day-of-month/month combinations that never occur, like "30 FEB"."""
    if day_and and not any(d <= _MAX_DAYS[m] for m in months for d in days):
        raise CronError(
            f'day-of-month "{parts[2]}" never occurs in month "{parts[3]}", '
            "so the schedule never fires"
        )


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise CronError(f'unknown time zone "{name}"') from None


def _as_utc(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {t.isoformat()}")
    return t.astimezone(timezone.utc)


def _days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return _MAX_DAYS[m]


@lru_cache(maxsize=1)
def local_zone() -> tzinfo:
    """The host's zone: $TZ or /etc/localtime as an IANA zone, else the current fixed offset."""
    # The only place this module reads the environment, disk or clock. A ZoneInfo keeps DST
    # rules; the fixed-offset fallback is right only until the next DST change.
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (KeyError, ValueError, OSError):
        return datetime.now().astimezone().tzinfo
