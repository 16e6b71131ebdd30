"""Recurring tasks (docs/spec/tasks.md §2.3): the RRULE subset tasks accepts, and the next
occurrence of a series in the user's timezone.

Pure functions: no database, no clock. python-dateutil expands the rule
(docs/adr/0015-recurrence.md); this module only decides which rules are accepted, runs the
expansion on the naive local wall-clock time, and applies ``COUNT`` and ``UNTIL`` itself so
that the first ``due_at`` always counts as the first occurrence (RFC 5545 §3.3.10).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo

from dateutil.rrule import rrule, rrulestr

MAX_LENGTH = 500
MAX_INTERVAL = 1000
MAX_COUNT = 10_000
PARTS = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "COUNT", "UNTIL")
FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
# A due date is before 9999-12-31T00:00:00Z (docs/spec/tasks.md §1); an occurrence must be too.
LAST_INSTANT = datetime(9999, 12, 31, tzinfo=UTC)
# Local dates from here on could overflow when converted to UTC: no occurrence there.
_LAST_LOCAL = datetime(9999, 12, 30)

_NAME = re.compile(r"[A-Z][A-Z-]*")
_NUMBER = re.compile(r"[0-9]{1,6}")
_WEEKDAY = re.compile(r"(?P<ordinal>[+-]?[0-9]{1,2})?(?P<day>MO|TU|WE|TH|FR|SA|SU)")
_MONTHDAY = re.compile(r"[+-]?[0-9]{1,2}")
_UNTIL_DATE = re.compile(r"[0-9]{8}")
_UNTIL_INSTANT = re.compile(r"[0-9]{8}T[0-9]{6}Z")


class RuleError(ValueError):
    """A recurrence tasks does not accept; ``part`` names the rule part at fault."""

    def __init__(self, part: str | None, message: str) -> None:
        super().__init__(message)
        self.part = part


@dataclass(frozen=True, slots=True)
class Rule:
    """An accepted recurrence: the stored text, what dateutil expands, and the bounds.

    ``until`` is an instant (aware, UTC) for ``UNTIL=…Z``, or a date in the user's zone for
    ``UNTIL=YYYYMMDD`` (occurrences on that day still count).
    """

    text: str
    expansion: str
    count: int | None
    until: datetime | date | None


def _number(part: str, value: str, low: int, high: int) -> int:
    if not _NUMBER.fullmatch(value) or not low <= int(value) <= high:
        raise RuleError(part, f"{part} must be a whole number from {low} to {high}")
    return int(value)


def _until(value: str) -> datetime | date:
    try:
        if _UNTIL_INSTANT.fullmatch(value):
            return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if _UNTIL_DATE.fullmatch(value):
            return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        pass
    raise RuleError(
        "UNTIL", "UNTIL must be a date such as 20261231 or a UTC time such as 20261231T170000Z"
    )


def _check_byday(value: str, freq: str) -> None:
    if freq not in ("WEEKLY", "MONTHLY"):
        raise RuleError("BYDAY", "BYDAY is taken with FREQ=WEEKLY or FREQ=MONTHLY only")
    for item in value.split(","):
        match = _WEEKDAY.fullmatch(item)
        if match is None:
            raise RuleError("BYDAY", f"BYDAY has {item!r}; days are MO, TU, WE, TH, FR, SA, SU")
        ordinal = match["ordinal"]
        if ordinal is None:
            continue
        if freq == "WEEKLY":
            raise RuleError("BYDAY", "BYDAY takes no ordinal (such as 1MO) with FREQ=WEEKLY")
        if not 1 <= abs(int(ordinal)) <= 5:
            raise RuleError("BYDAY", f"BYDAY has {item!r}; an ordinal is 1 to 5 or -1 to -5")


def _check_bymonthday(value: str, freq: str, byday: str | None) -> None:
    if freq not in ("MONTHLY", "YEARLY"):
        raise RuleError("BYMONTHDAY", "BYMONTHDAY is taken with FREQ=MONTHLY or FREQ=YEARLY only")
    if byday is not None and re.search(r"[0-9]", byday):
        # Such a pair can match no day at all (5MO on the 1st): the search would run to 9999.
        raise RuleError("BYMONTHDAY", "BYMONTHDAY cannot be combined with an ordinal BYDAY")
    for item in value.split(","):
        if not _MONTHDAY.fullmatch(item) or not 1 <= abs(int(item)) <= 31:
            raise RuleError("BYMONTHDAY", f"BYMONTHDAY has {item!r}; days are 1 to 31 or -1 to -31")


def parse(value: str) -> Rule:
    """Accept ``value`` (any case, surrounding blanks ignored) or raise ``RuleError``."""
    text = value.strip().upper()
    if len(text) > MAX_LENGTH:
        raise RuleError(None, f"a recurrence is at most {MAX_LENGTH} characters")
    if "DTSTART" in text:
        raise RuleError("DTSTART", "DTSTART is not taken: the series starts at the task's due_at")
    if text.startswith("RRULE:"):
        raise RuleError("RRULE", "give the rule's value without RRULE:, such as FREQ=DAILY")
    parts: dict[str, str] = {}
    for raw in text.split(";"):
        name, equals, part_value = raw.partition("=")
        if not _NAME.fullmatch(name) or not equals:
            raise RuleError(
                name if _NAME.fullmatch(name) else None,
                f"{raw!r} is not a rule part such as FREQ=DAILY",
            )
        if name not in PARTS:
            raise RuleError(
                name, f"{name} is not supported; a recurrence takes {', '.join(PARTS)} only"
            )
        if name in parts:
            raise RuleError(name, f"{name} is given twice")
        if not part_value:
            raise RuleError(name, f"{name} has no value")
        parts[name] = part_value
    freq = parts.get("FREQ")
    if freq is None:
        raise RuleError("FREQ", "FREQ is required, such as FREQ=DAILY")
    if freq not in FREQUENCIES:
        raise RuleError("FREQ", f"FREQ must be one of {', '.join(FREQUENCIES)}")
    if "INTERVAL" in parts:
        _number("INTERVAL", parts["INTERVAL"], 1, MAX_INTERVAL)
    if "BYDAY" in parts:
        _check_byday(parts["BYDAY"], freq)
    if "BYMONTHDAY" in parts:
        _check_bymonthday(parts["BYMONTHDAY"], freq, parts.get("BYDAY"))
    if "COUNT" in parts and "UNTIL" in parts:
        raise RuleError("UNTIL", "COUNT and UNTIL cannot both be given")
    count = _number("COUNT", parts["COUNT"], 1, MAX_COUNT) if "COUNT" in parts else None
    until = _until(parts["UNTIL"]) if "UNTIL" in parts else None
    expansion = ";".join(
        f"{name}={parts[name]}"
        for name in ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY")
        if name in parts
    )
    try:
        _expander(expansion, datetime(2026, 1, 1, 9, 0))
    except ValueError as exc:  # what the checks above let through and dateutil refuses
        raise RuleError("FREQ", f"the rule cannot be expanded: {exc}") from None
    return Rule(text=text, expansion=expansion, count=count, until=until)


@functools.lru_cache(maxsize=1024)
def _expander(expansion: str, dtstart: datetime) -> rrule:
    expanded = rrulestr(expansion, dtstart=dtstart, cache=False)
    assert isinstance(expanded, rrule)
    return expanded


def wall_clock(moment: datetime, zone: tzinfo) -> datetime:
    """``moment`` as the naive local time on the wall in ``zone``."""
    return moment.astimezone(zone).replace(tzinfo=None)


def on_the_wall(local: datetime, zone: tzinfo) -> datetime:
    """The instant (UTC) a naive local time names in ``zone``.

    ``fold=0``: a time that happens twice (clocks going back) is the first of the two; a time
    that does not exist (the hour skipped when clocks go forward) is read with the offset
    before the change, so 02:30 in a skipped hour is 03:30 after it.
    """
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def next_occurrence(
    rule: Rule, *, start: datetime, after: datetime, completed: int, zone: tzinfo
) -> datetime | None:
    """The occurrence that follows ``after`` in the series that began at ``start`` (UTC).

    ``completed`` is how many occurrences of the series are done, ``after`` included; the
    first ``due_at`` (``start``) is occurrence 1 whether or not the rule produces it. ``None``
    when no occurrence is left (``COUNT`` reached, past ``UNTIL``, or none before 9999).
    """
    if rule.count is not None and completed >= rule.count:
        return None
    try:
        expander = _expander(rule.expansion, wall_clock(start, zone))
        local = wall_clock(after, zone)
        while True:
            found = expander.after(local)
            if found is None or found >= _LAST_LOCAL:
                return None
            instant = on_the_wall(found, zone)
            if instant > after:  # strictly later, even when the zone changed between calls
                break
            local = found
    except OverflowError:
        return None
    if isinstance(rule.until, datetime):
        if instant > rule.until:
            return None
    elif rule.until is not None and found.date() > rule.until:
        return None
    return instant if instant < LAST_INSTANT else None
