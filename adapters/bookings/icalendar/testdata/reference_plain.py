#!/usr/bin/python3
"""Expansion by Debian's iCalendar libraries used as they come, no workarounds.

    /usr/bin/python3 reference_plain.py FILE.ics --from TIME --to TIME [--tz ZONE] [--json]
    /usr/bin/python3 reference_plain.py FILE.ics --window FROM,TO[,ZONE] ... [--json]

prints the occurrences of FILE (or stdin for "-") in [from, to) as the JSON
lines `bmsgw bookings expand --json` prints: {"uid","recurrence_id",
"summary","location","start","end"}, times in RFC 3339 UTC, sorted by start,
uid, recurrence_id. TIME is a date (midnight in --tz) or RFC 3339; --tz
defaults to the calendar's X-WR-TIMEZONE, else Europe/Copenhagen. The same
CLI as reference_expand.py.

Unlike reference_expand.py, this script corrects nothing. It does what the
libraries document (python3-icalendar 4.0.3, python3-recurring-ical-events
2.0.1):

    calendar = icalendar.Calendar.from_ical(data)
    events = recurring_ical_events.of(calendar).between(start, end)

and only formats the events it gets back. That is the whole point: the Go
test TestAgainstUnpatchedLibraries records every line where bmsgw and the
libraries disagree, with the reason, instead of a script that re-implements
bmsgw's rules agreeing with bmsgw. The only glue:

- A stream with several VCALENDARs: Calendar.from_ical(data) refuses it
  ("Found multiple components where only one is allowed"), so the script
  asks for Calendar.from_ical(data, multiple=True) and expands each
  VCALENDAR on its own with recurring_ical_events.of(). Nothing is merged
  across calendars.
- The window is passed to between() as two aware datetimes in --tz (a date
  is midnight in --tz; 2.0.1 compares floating and all-day events on the
  wall clock of the window's zone).
- Formatting, as bmsgw prints records: start from DTSTART, end from DTEND,
  which the library sets on every event it returns. An aware date-time is
  converted to UTC as the library localized it; a floating date-time, and a
  DATE at midnight, is placed in --tz the way bmsgw places them (RFC 5545 3.3.5: a time that occurs twice
  is its first occurrence, a time in a gap takes the offset before the
  gap). recurrence_id is the event's RECURRENCE-ID if it has one; for a
  repetition of an event with RRULE or RDATE (kept with the documented
  keep_recurrence_attributes=True) it is the repetition's DTSTART, which is
  what RFC 5545 3.8.4.4 says identifies an instance; otherwise "".
- STATUS:CANCELLED events are left out, as bmsgw leaves them out; 2.0.1
  returns them.

If the libraries raise, the script prints the exception to stderr and exits
4. With --window (repeatable; the Go test uses it to start Python once per
file) it prints "#window N" before the lines of the N-th window (from 0) and
"#error MESSAGE" instead of lines for a window on which the libraries raise;
a file the parser rejects still exits 4.
"""

import argparse
import datetime
import json
import sys

try:
    import icalendar
    import pytz
    import recurring_ical_events
except ImportError as exc:  # pragma: no cover - reported to the Go test
    sys.stderr.write(
        "reference_plain.py: %s\n"
        "install: apt-get update && apt-get install -y python3-icalendar "
        "python3-dateutil python3-recurring-ical-events\n" % exc
    )
    sys.exit(3)

UTC = pytz.utc
DEFAULT_ZONE = "Europe/Copenhagen"
LIBRARY_FAILED = 4


def place(zone, naive):
    """A wall time in zone as bmsgw reads it (RFC 5545 3.3.5)."""
    try:
        return zone.localize(naive, is_dst=None)
    except pytz.exceptions.AmbiguousTimeError:
        return zone.localize(naive, is_dst=True)
    except pytz.exceptions.NonExistentTimeError:
        return zone.localize(naive, is_dst=False)


def instant(value, zone):
    """Format a DATE, floating or aware DATE-TIME as RFC 3339 UTC."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = place(zone, value)
    else:
        value = place(zone, datetime.datetime(value.year, value.month, value.day))
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_bound(text, zone):
    try:
        day = datetime.datetime.strptime(text, "%Y-%m-%d")
        return place(zone, day)
    except ValueError:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(zone)


def record(event, zone):
    start = event["DTSTART"].dt
    if event.get("DTEND") is not None:
        end = event["DTEND"].dt
    elif event.get("DURATION") is not None:
        end = start + event["DURATION"].dt
    else:
        end = start
    rid = ""
    if event.get("RECURRENCE-ID") is not None:
        rid = instant(event["RECURRENCE-ID"].dt, zone)
    elif event.get("RRULE") is not None or event.get("RDATE") is not None:
        rid = instant(start, zone)
    return {
        "uid": str(event.get("UID", "")),
        "recurrence_id": rid,
        "summary": str(event.get("SUMMARY", "")),
        "location": str(event.get("LOCATION", "")),
        "start": instant(start, zone),
        "end": instant(end, zone),
    }


def expand(calendars, lo, hi, zone):
    """The JSON lines of one window, sorted as bmsgw sorts them."""
    records = []
    for calendar in calendars:
        events = recurring_ical_events.of(calendar, keep_recurrence_attributes=True).between(lo, hi)
        for event in events:
            if str(event.get("STATUS", "")).strip().upper() == "CANCELLED":
                continue
            records.append(record(event, zone))
    # sorted() is stable: ties keep the library's order.
    records.sort(key=lambda r: (r["start"], r["uid"], r["recurrence_id"]))
    out = []
    for r in records:
        text = json.dumps(r, ensure_ascii=False, separators=(",", ":"))
        # Go's encoding/json escapes these two even without HTML escaping.
        out.append(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return out


def failure(exc):
    """The first line of an exception, invisible characters (a BOM) escaped."""
    text = ("%s: %s" % (type(exc).__name__, exc)).strip().splitlines()[0]
    return "".join(c if c.isprintable() else "\\u%04x" % ord(c) for c in text)


def parse(data):
    """Calendar.from_ical as documented; several VCALENDARs, which it
    refuses, with multiple=True."""
    try:
        return [icalendar.Calendar.from_ical(data)]
    except ValueError as exc:
        if "multiple components" not in str(exc):
            raise
    return icalendar.Calendar.from_ical(data, multiple=True)


def zone_of(name, calendars):
    if not name:
        for calendar in calendars:
            if calendar.get("X-WR-TIMEZONE"):
                name = str(calendar["X-WR-TIMEZONE"]).strip()
                break
    try:
        return pytz.timezone(name or DEFAULT_ZONE)
    except pytz.UnknownTimeZoneError:
        return pytz.timezone(DEFAULT_ZONE)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--from", dest="start")
    parser.add_argument("--to", dest="end")
    parser.add_argument("--tz", default="")
    parser.add_argument("--window", action="append", default=[], help="FROM,TO[,ZONE]; repeatable")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_intermixed_args(argv)
    if args.window and (args.start or args.end or args.tz):
        parser.error("--window replaces --from, --to and --tz")
    if not args.window and not (args.start and args.end):
        parser.error("need --from and --to, or --window")

    data = sys.stdin.buffer.read() if args.file == "-" else open(args.file, "rb").read()
    try:
        calendars = parse(data)
    except Exception as exc:  # noqa: BLE001 - whatever the library raises is the result
        sys.stderr.write("reference_plain.py: icalendar: %s\n" % failure(exc))
        return LIBRARY_FAILED

    if not args.window:
        zone = zone_of(args.tz, calendars)
        try:
            lines = expand(calendars, window_bound(args.start, zone), window_bound(args.end, zone), zone)
        except Exception as exc:  # noqa: BLE001
            sys.stderr.write("reference_plain.py: recurring_ical_events: %s\n" % failure(exc))
            return LIBRARY_FAILED
        for line in lines:
            sys.stdout.write(line + "\n")
        return 0

    for n, spec in enumerate(args.window):
        parts = spec.split(",")
        if len(parts) not in (2, 3):
            parser.error("--window %r: want FROM,TO[,ZONE]" % spec)
        zone = zone_of(parts[2] if len(parts) == 3 else "", calendars)
        sys.stdout.write("#window %d\n" % n)
        try:
            lines = expand(calendars, window_bound(parts[0], zone), window_bound(parts[1], zone), zone)
        except Exception as exc:  # noqa: BLE001
            sys.stdout.write("#error recurring_ical_events: %s\n" % failure(exc))
            continue
        for line in lines:
            sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
