"""Timestamps as Kubernetes writes them, computed without a clock or ``datetime``.

The model never reads a clock: a request that stamps a time carries it as whole seconds since
the Unix epoch, and the model renders it the way ``metav1.Time`` serializes, RFC 3339 in UTC at
one-second precision (``2006-01-02T15:04:05Z``). Parsing is needed only to compare a stored
``deletionTimestamp`` with "now", and only this one form is ever stored by the model.

The calendar arithmetic is Howard Hinnant's ``days_from_civil`` / ``civil_from_days`` on the
proleptic Gregorian calendar, exact for every year from 0 to 9999.
"""

from __future__ import annotations

_SECONDS_PER_DAY = 86_400
_DAYS_PER_ERA = 146_097  # 400 Gregorian years
_EPOCH_SHIFT = 719_468  # days from 0000-03-01 to 1970-01-01


def _days_from_civil(year: int, month: int, day: int) -> int:
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * _DAYS_PER_ERA + day_of_era - _EPOCH_SHIFT


def _civil_from_days(days: int) -> tuple[int, int, int]:
    days += _EPOCH_SHIFT
    era = days // _DAYS_PER_ERA
    day_of_era = days - era * _DAYS_PER_ERA
    year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    shifted_month = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    month = shifted_month + (3 if shifted_month < 10 else -9)
    return year_of_era + era * 400 + (month <= 2), month, day


def rfc3339(seconds: int) -> str:
    """``seconds`` since the epoch as ``YYYY-MM-DDTHH:MM:SSZ``."""
    days, rest = divmod(seconds, _SECONDS_PER_DAY)
    year, month, day = _civil_from_days(days)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


def parse_rfc3339(text: str) -> int:
    """The inverse of :func:`rfc3339`; ``ValueError`` for any other shape."""
    if len(text) != 20 or text[4] + text[7] + text[10] + text[13] + text[16] + text[19] != "--T::Z":
        raise ValueError(f"not a UTC RFC 3339 timestamp at second precision: {text!r}")
    fields = (text[0:4], text[5:7], text[8:10], text[11:13], text[14:16], text[17:19])
    if not all(f.isascii() and f.isdigit() for f in fields):
        raise ValueError(f"not a UTC RFC 3339 timestamp at second precision: {text!r}")
    year, month, day, hour, minute, second = (int(f) for f in fields)
    seconds = _days_from_civil(year, month, day) * _SECONDS_PER_DAY
    seconds += hour * 3600 + minute * 60 + second
    if rfc3339(seconds) != text:  # month 13, February 30th, hour 24 and the like
        raise ValueError(f"not a valid date and time: {text!r}")
    return seconds
