#!/usr/bin/python3
"""Reference expansion for `bmsgw bookings expand --json`, built independently.

    /usr/bin/python3 reference_expand.py FILE.ics --from TIME --to TIME [--tz ZONE] [--json]

prints the occurrences of FILE (or stdin for "-") overlapping [from, to) as the
JSON lines bmsgw prints: {"uid","recurrence_id","summary","location","start",
"end"}, times in RFC 3339 UTC, sorted by start, uid, recurrence_id, cancelled
occurrences left out. TIME is a date (midnight in --tz) or RFC 3339; --tz
defaults to the calendar's X-WR-TIMEZONE, else Europe/Copenhagen.

It runs on Debian's packages only (apt-get install -y python3-icalendar
python3-dateutil python3-recurring-ical-events), with /usr/bin/python3:

- python3-icalendar (4.0.3) parses the stream, unescapes text, resolves TZIDs
  (pytz, its own Windows table, VTIMEZONE -> pytz-style zones);
- python3-recurring-ical-events (2.0.1), on python3-dateutil's rruleset,
  expands each VEVENT: DTSTART, RRULE, RDATE, EXDATE, UNTIL quirks, DTEND or
  DURATION, DST-aware instance times.

None of that shares code with the Go side (go-ical, rrule-go, Go's tzdata).

recurring-ical-events 2.0.1 predates features RFC 5545 requires; where it is
wrong, this script works around it rather than the Go test carrying a
deviation for every file. Each workaround cites the rule it restores:

1. A VEVENT whose DTSTART is a DATE and that has neither DTEND nor DURATION
   lasts one day (RFC 5545 3.6.1); 2.0.1 makes it zero-length. The script
   adds the DTEND before expansion.
2. Several RRULEs are allowed (RFC 5545 3.8.5.3 "SHOULD NOT", RFC 2445 MAY);
   2.0.1 raises. The script expands a copy per RRULE and takes the union.
3. RDATE;VALUE=PERIOD (RFC 5545 3.8.5.2); 2.0.1 crashes on the tuples. The
   script passes the period starts and applies each period's own end.
   icalendar 4.0.3 also drops the TZID of PERIOD values, which 3.8.5.2
   applies to them; the script puts it back.
4. A local time that occurs twice means its first occurrence (RFC 5545
   3.3.5); pytz's localize() picks the second. The script re-localizes.
5. Overrides replace the instance whose start equals their RECURRENCE-ID,
   and RANGE=THISANDFUTURE reshapes later instances (RFC 5545 3.8.4.4);
   2.0.1 matches overrides by calendar day and ignores RANGE. The script
   merges overrides itself, using 2.0.1 only to expand each component.
6. X-WR-TIMEZONE is not RFC 5545; `recurring_ical_events.of()` would
   reinterpret UTC times in it, so the script uses UnfoldableCalendar's
   parts directly and lets X-WR-TIMEZONE only default the floating zone.

Stream semantics bmsgw defines on top of RFC 5545/5546, mirrored here: a
stream may hold several VCALENDARs; a duplicate UID+RECURRENCE-ID keeps the
higher SEQUENCE, then the later one; a METHOD:CANCEL object cancels the
events (or the RECURRENCE-ID) it names if its SEQUENCE is at least theirs;
an event that cannot be read (missing DTSTART, unknown TZID, unreadable
date or RRULE, DTEND before DTSTART) is skipped.

Two kinds of invalid VEVENT are not skipped but recovered, as bmsgw does
(with a warning there), because the meaning is not in doubt:

a. DTEND and DURATION both given: RFC 5545 3.6.1 allows one of them, but
   Thunderbird writes both (DURATION:PT0S beside the real DTEND) on moved
   instances. DTEND, the explicit end, wins: the script drops DURATION,
   and any error icalendar recorded for it, before the other checks.
b. Whitespace in an RRULE: the RFC 5545 3.3.10 grammar has none, but
   Exchange's CDO writes "BYDAY=MO, TU, WE". The script removes all
   whitespace from the (unfolded) value of each VEVENT's RRULE before
   icalendar parses it, as bmsgw does before rrule-go reads it.
"""

import argparse
import datetime
import json
import re
import sys

try:
    import dateutil  # noqa: F401  (recurring_ical_events builds on it)
    import icalendar
    import pytz
    import recurring_ical_events as rie
    from icalendar.prop import vDDDLists, vDDDTypes
    from icalendar.timezone_cache import _timezone_cache
    from icalendar.windows_to_olson import WINDOWS_TO_OLSON
except ImportError as exc:  # pragma: no cover - reported to the Go test
    sys.stderr.write(
        "reference_expand.py: %s\n"
        "install: apt-get update && apt-get install -y python3-icalendar "
        "python3-dateutil python3-recurring-ical-events\n" % exc
    )
    sys.exit(3)

UTC = pytz.utc
DATE_PROPS = ("DTSTART", "DTEND", "RECURRENCE-ID", "RDATE", "EXDATE")
CRITICAL = {
    "UID", "DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE",
    "RECURRENCE-ID", "SEQUENCE", "STATUS",
}


class Skip(Exception):
    """An event that cannot be read."""


# Content lines as icalendar 4.0.3 unfolds and splits them (parser.py).
FOLD = re.compile(rb"(\r?\n)+[ \t]")
NEWLINE = re.compile(rb"\r?\n")
NAME = re.compile(rb"[A-Za-z0-9-]*")


def despace_rrules(data):
    """data with whitespace removed from each VEVENT's RRULE value (rule b).

    Returns data unchanged when no RRULE needs it.
    """
    lines = NEWLINE.split(FOLD.sub(b"", data))
    stack, changed = [], False
    for i, line in enumerate(lines):
        name = NAME.match(line).group(0).upper()
        # The value starts after the first colon outside a quoted parameter.
        colon, quoted = None, False
        for j in range(len(name), len(line)):
            c = line[j:j + 1]
            if c == b'"':
                quoted = not quoted
            elif c == b":" and not quoted:
                colon = j
                break
        if colon is None:
            continue
        value = line[colon + 1:]
        if name == b"BEGIN":
            stack.append(value.strip().upper())
        elif name == b"END":
            if stack:
                stack.pop()
        elif name == b"RRULE" and stack and stack[-1] == b"VEVENT":
            text = value.decode("utf-8", "surrogateescape").strip()
            if " " in text or "\t" in text:
                text = "".join(text.split())
            fixed = text.encode("utf-8", "surrogateescape")
            if fixed != value:
                lines[i] = line[:colon + 1] + fixed
                changed = True
    return b"\r\n".join(lines) if changed else data


def dtend_wins(component):
    """Drop DURATION when DTEND is given too (rule a)."""
    if component.get("DTEND") is None or "DURATION" not in component:
        return
    del component["DURATION"]
    component.errors[:] = [e for e in component.errors if e[0] != "DURATION"]


def rfc_localize(zone, naive):
    """Localize a wall time per RFC 5545 3.3.5 (workaround 4)."""
    try:
        return zone.localize(naive, is_dst=None)
    except pytz.exceptions.AmbiguousTimeError:
        return zone.localize(naive, is_dst=True)
    except pytz.exceptions.NonExistentTimeError:
        # The offset before the gap: standard time on the way into DST.
        return zone.localize(naive, is_dst=False)
    except AttributeError:
        return naive.replace(tzinfo=zone)


def to_utc(value, floating):
    """An instant for a date, a floating or an aware date-time."""
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return rfc_localize(floating, value).astimezone(UTC)
        return rfc_localize(value.tzinfo, value.replace(tzinfo=None)).astimezone(UTC)
    return rfc_localize(floating, datetime.datetime(value.year, value.month, value.day)).astimezone(UTC)


def fmt(instant):
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_window(text, zone):
    try:
        day = datetime.datetime.strptime(text, "%Y-%m-%d")
        return rfc_localize(zone, day)
    except ValueError:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def values(component, name):
    """All parsed values of a DATE/DATE-TIME/PERIOD list property."""
    prop = component.get(name)
    if prop is None:
        return []
    out = []
    for item in prop if isinstance(prop, list) else [prop]:
        if isinstance(item, vDDDLists):
            out.extend(d.dt for d in item.dts)
        else:
            out.append(item.dt)
    return out


def tzid_params(component, name):
    prop = component.get(name)
    if prop is None:
        return []
    return [getattr(p, "params", {}).get("TZID") for p in (prop if isinstance(prop, list) else [prop])]


def check(component, notice):
    """Raise Skip for events bmsgw skips."""
    for name, _ in component.errors:
        if name in CRITICAL:
            raise Skip(name)
    if notice:
        if not component.get("UID"):
            raise Skip("UID")
        return
    if component.get("DTSTART") is None:
        raise Skip("DTSTART missing")
    for name in DATE_PROPS:
        vals = values(component, name)
        if None in vals:
            raise Skip(name)
        # icalendar reads an unknown TZID as floating; bmsgw skips the event.
        for tzid in tzid_params(component, name):
            if tzid and zone_for(tzid) is None:
                raise Skip("unknown TZID")
    start = component["DTSTART"].dt
    if component.get("DTEND") is not None:
        end = component["DTEND"].dt
        if isinstance(end, datetime.datetime) != isinstance(start, datetime.datetime):
            raise Skip("DTEND type")
        if isinstance(start, datetime.datetime) and (start.tzinfo is None) == (end.tzinfo is None) and end < start:
            raise Skip("DTEND before DTSTART")
        if not isinstance(start, datetime.datetime) and end < start:
            raise Skip("DTEND before DTSTART")
    if component.get("DURATION") is not None and component["DURATION"].dt < datetime.timedelta(0):
        raise Skip("negative DURATION")


def zone_for(tzid):
    """The zone icalendar 4.0.3 would use for a TZID (see vDatetime.from_ical)."""
    try:
        return pytz.timezone(tzid)
    except pytz.UnknownTimeZoneError:
        if tzid in WINDOWS_TO_OLSON:
            return pytz.timezone(WINDOWS_TO_OLSON[tzid])
        return _timezone_cache.get(tzid)


def period_values(component):
    """RDATE values with the TZID put back on naive PERIOD parts (workaround 3)."""
    prop = component.get("RDATE")
    out = []
    for item in prop if isinstance(prop, list) else [prop]:
        tzid = getattr(item, "params", {}).get("TZID")
        zone = zone_for(tzid) if tzid else None
        for d in item.dts:
            v = d.dt
            if isinstance(v, tuple) and zone is not None:
                begin, end = v
                if isinstance(begin, datetime.datetime) and begin.tzinfo is None:
                    begin = rfc_localize(zone, begin)
                if isinstance(end, datetime.datetime) and end.tzinfo is None:
                    end = rfc_localize(zone, end)
                v = (begin, end)
            out.append(v)
    return out


def rid_key(value, floating):
    if not isinstance(value, datetime.datetime):
        return ("d", value)
    if value.tzinfo is None:
        return ("f", value)
    return ("i", to_utc(value, floating))


class Event:
    def __init__(self, component, order, floating):
        self.c = component
        self.order = order
        self.uid = str(component.get("UID", "")).strip()
        seq = component.get("SEQUENCE", 0)
        try:
            self.seq = max(int(seq), 0)
        except (TypeError, ValueError):
            self.seq = 0
        self.status = str(component.get("STATUS", "")).strip().upper()
        rid = component.get("RECURRENCE-ID")
        self.rid = rid.dt if rid is not None else None
        self.this_and_future = rid is not None and str(rid.params.get("RANGE", "")).upper() == "THISANDFUTURE"
        self.key = rid_key(self.rid, floating) if self.rid is not None else ("master", None)

    def newer_than(self, other):
        return (self.seq, self.order) > (other.seq, other.order)


def prepared(component):
    """A copy of the component that 2.0.1 can expand (workarounds 1 and 3).

    Returns the copy and a dict from PERIOD start to PERIOD end.
    """
    comp = component.copy()
    for sub in component.subcomponents:
        comp.add_component(sub)
    start = comp["DTSTART"].dt
    if not isinstance(start, datetime.datetime) and comp.get("DTEND") is None and comp.get("DURATION") is None:
        comp["DTEND"] = vDDDTypes(start + datetime.timedelta(days=1))
    periods = {}
    if comp.get("RDATE") is not None:
        starts = []
        for v in period_values(comp):
            if isinstance(v, tuple):
                begin, end = v
                if isinstance(end, datetime.timedelta):
                    end = begin + end
                periods[begin] = end
                starts.append(begin)
            else:
                starts.append(v)
        del comp["RDATE"]
        if starts:
            comp["RDATE"] = vDDDLists(starts)
    return comp, periods


def repetitions(component, lo, hi, floating):
    """(start, stop) of every instance of one component with start in [lo, hi]."""
    comp, periods = prepared(component)
    rules = comp.get("RRULE")
    copies = [comp]
    if isinstance(rules, list):  # workaround 2
        copies = []
        for rule in rules:
            one = comp.copy()
            one["RRULE"] = rule
            copies.append(one)
    seen = {}
    for one in copies:
        rep = rie.RepeatedEvent(one)
        if rep.tzinfo is None:
            # Floating and all-day series compare on the wall clock.
            span = (lo.astimezone(floating).replace(tzinfo=None), hi.astimezone(floating).replace(tzinfo=None))
        else:
            span = (lo, hi)
        for r in rep.within_days(*span):
            start = to_utc(r.start, floating)
            if start in seen:
                continue
            if isinstance(r.start, datetime.datetime) and r.start.tzinfo is not None:
                stop = start + (r.stop - r.start)
            else:
                stop = to_utc(r.stop, floating)
            period_end = None
            for begin, end in periods.items():
                if to_utc(begin, floating) == start:
                    period_end = to_utc(end, floating)
            if period_end is not None:
                stop = period_end
            seen[start] = (r.start, start, stop)
    return sorted(seen.values(), key=lambda t: t[1])


def single(event, floating):
    comp, _ = prepared(event.c)
    rep = rie.RepeatedEvent(comp)
    if rep.rrule is not None:
        comp = comp.copy()
        del comp["RRULE"]
        rep = rie.RepeatedEvent(comp)
    r = rep.as_single_event()
    start = to_utc(r.start, floating)
    if isinstance(r.start, datetime.datetime) and r.start.tzinfo is not None:
        stop = start + (r.stop - r.start)
    else:
        stop = to_utc(r.stop, floating)
    return start, stop


def overlaps(start, stop, lo, hi):
    if stop < start:
        stop = start
    if start == stop:
        return lo <= start < hi
    return start < hi and stop > lo


def wall_in(zone, instant):
    return instant.astimezone(zone).replace(tzinfo=None)


def series_zone(master, floating):
    start = master.c["DTSTART"].dt
    if isinstance(start, datetime.datetime) and start.tzinfo is not None:
        return start.tzinfo
    return floating


def rfc_in(zone, wall):
    return rfc_localize(zone, wall).astimezone(UTC)


def expand_series(master, overrides, cancelled, lo, hi, floating, out):
    for o in overrides:
        start, stop = single(o, floating)
        if overlaps(start, stop, lo, hi):
            out.append((start, stop, o, o.status, to_utc(o.rid, floating)))
    if master is None:
        return
    all_day = not isinstance(master.c["DTSTART"].dt, datetime.datetime)
    zone = series_zone(master, floating)
    recurring = master.c.get("RRULE") is not None or master.c.get("RDATE") is not None

    def key_of(value):
        if not isinstance(value, datetime.datetime) or all_day:
            return ("d", value.date() if isinstance(value, datetime.datetime) else value)
        return ("i", to_utc(value, floating))

    replaced = {key_of(o.rid) for o in overrides}
    cancel_keys = {key_of(r) for r in cancelled}
    ranges = []
    for o in overrides:
        if not o.this_and_future:
            continue
        start, stop = single(o, floating)
        rid_u = to_utc(o.rid, floating)
        if all_day:
            shift = o.c["DTSTART"].dt - o.rid
        else:
            shift = wall_in(zone, start) - wall_in(zone, rid_u)
        ranges.append((key_of(o.rid), shift, stop - start, o))
    ranges.sort(key=lambda r: r[0][1])

    # Instances are expanded a little beyond the window: overrides and
    # durations move them.
    longest = datetime.timedelta(days=400)
    shifts = [r[1] for r in ranges] + [datetime.timedelta(0)]
    span_lo = lo - longest - max(shifts) - datetime.timedelta(days=2)
    span_hi = hi - min(shifts) + datetime.timedelta(days=2)
    for original, start, stop in repetitions(master.c, span_lo, span_hi, floating):
        day = ("d", start.astimezone(zone).date() if not all_day else (original if not isinstance(original, datetime.datetime) else original.date()))
        key = day if all_day else ("i", start)
        if key in replaced or (not all_day and day in replaced):
            continue
        is_cancelled = key in cancel_keys or (not all_day and day in cancel_keys)
        rng = None
        for r in ranges:
            if r[0][0] == key[0] and r[0][1] < key[1]:
                rng = r
        source, status = master, master.status
        if rng is not None:
            _, shift, length, source = rng
            status = source.status
            if all_day:
                new_start = rfc_in(floating, datetime.datetime.combine(key[1] + shift, datetime.time()))
            else:
                new_start = rfc_in(zone, wall_in(zone, start) + shift)
            # The override's own length, on the same terms as for the master.
            new_stop = new_start + length
            if all_day:
                new_stop = rfc_in(floating, datetime.datetime.combine(key[1] + shift, datetime.time()) + length)
            start_out, stop_out = new_start, new_stop
        else:
            start_out, stop_out = start, stop
        if is_cancelled:
            status = "CANCELLED"
        if overlaps(start_out, stop_out, lo, hi):
            out.append((start_out, stop_out, source, status, start if recurring else None))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file")
    parser.add_argument("--from", dest="start", required=True)
    parser.add_argument("--to", dest="end", required=True)
    parser.add_argument("--tz", default="")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_intermixed_args(argv)

    data = sys.stdin.buffer.read() if args.file == "-" else open(args.file, "rb").read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    data = despace_rrules(data)
    calendars = icalendar.Calendar.from_ical(data, multiple=True)

    zone_name = args.tz
    if not zone_name:
        for cal in calendars:
            if cal.get("X-WR-TIMEZONE"):
                zone_name = str(cal["X-WR-TIMEZONE"]).strip()
                break
    try:
        floating = pytz.timezone(zone_name or "Europe/Copenhagen")
    except pytz.UnknownTimeZoneError:
        floating = pytz.timezone("Europe/Copenhagen")
    lo = parse_window(args.start, floating)
    hi = parse_window(args.end, floating)

    events, notices = [], []
    order = 0
    for cal in calendars:
        notice = str(cal.get("METHOD", "")).strip().upper() == "CANCEL"
        for component in cal.subcomponents:
            if component.name != "VEVENT":
                continue
            order += 1
            dtend_wins(component)
            try:
                check(component, notice)
            except Skip:
                continue
            (notices if notice else events).append(Event(component, order, floating))

    latest = {}
    for e in events:
        if e.uid and ((e.uid, e.key) not in latest or e.newer_than(latest[(e.uid, e.key)])):
            latest[(e.uid, e.key)] = e
    groups, by_uid = [], {}
    for e in events:
        if e.uid and latest[(e.uid, e.key)] is not e:
            continue
        group = by_uid.get(e.uid) if e.uid else None
        if group is None:
            group = {"master": None, "overrides": [], "cancelled": []}
            groups.append(group)
            if e.uid:
                by_uid[e.uid] = group
        if e.rid is None:
            group["master"] = e
        else:
            group["overrides"].append(e)
    for n in notices:
        group = by_uid.get(n.uid)
        if group is None:
            continue
        master = group["master"]
        if n.rid is None:
            if master is not None and n.seq >= master.seq:
                master.status = "CANCELLED"
            for o in group["overrides"]:
                if n.seq >= o.seq:
                    o.status = "CANCELLED"
            continue
        matched = [o for o in group["overrides"] if o.key == n.key]
        for o in matched:
            if n.seq >= o.seq:
                o.status = "CANCELLED"
        if not matched and master is not None and n.seq >= master.seq:
            group["cancelled"].append(n.rid)

    out = []
    for group in groups:
        expand_series(group["master"], group["overrides"], group["cancelled"], lo, hi, floating, out)
    lines = []
    for start, stop, source, status, rid in out:
        if status == "CANCELLED":
            continue
        lines.append((start, source.uid, rid or datetime.datetime.min.replace(tzinfo=UTC), source.order, {
            "uid": source.uid,
            "recurrence_id": fmt(rid) if rid is not None else "",
            "summary": str(source.c.get("SUMMARY", "")),
            "location": str(source.c.get("LOCATION", "")),
            "start": fmt(start),
            "end": fmt(stop),
        }))
    # Events without a UID can tie on start, uid and recurrence_id; the
    # stream order breaks the tie, as in bmsgw.
    lines.sort(key=lambda l: l[:4])
    for line in lines:
        text = json.dumps(line[4], ensure_ascii=False, separators=(",", ":"))
        # Go's encoding/json escapes these two even without HTML escaping.
        sys.stdout.write(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
