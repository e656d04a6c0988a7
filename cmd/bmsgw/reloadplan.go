package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

// reloadChanges says, one line each, what applying ng in place of old
// changes: sites, booking sources, connections, points, overrides that
// end, the OPC UA server and access outputs. `bmsgw reload --check`
// prints it before anything is applied, `bmsgw reload` after. st is the
// engine's status, for the overrides in force.
func reloadChanges(old, ng *config.Gateway, st control.Status) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	added, removed := siteDiff(old, ng)
	for _, id := range added {
		s := ng.Site(id)
		add("add site %s (%s, %s)", s.ID, plural(len(s.Points), "point"), plural(len(s.Connections), "connection"))
	}
	for _, id := range removed {
		add("remove site %s: its connections are closed, its points left as they are", id)
	}
	for _, s := range ng.Sources {
		switch prev := old.Source(s.ID); {
		case prev == nil:
			add("start booking source %s", s.ID)
		case !sameSource(prev, s):
			add("restart booking source %s: its settings changed", s.ID)
		}
	}
	for _, s := range old.Sources {
		if ng.Source(s.ID) == nil {
			add("stop booking source %s", s.ID)
		}
	}
	for _, s := range ng.Sites {
		if os := old.Site(s.ID); os != nil {
			out = append(out, siteChanges(os, s)...)
		}
	}
	out = append(out, overrideChanges(ng, st)...)
	switch o, n := old.OPCUAServer, ng.OPCUAServer; {
	case o == nil && n != nil:
		add("start the OPC UA server on %s", n.Endpoint)
	case o != nil && n == nil:
		add("stop the OPC UA server")
	case o != nil && !reflect.DeepEqual(*o, *n):
		add("restart the OPC UA server: its settings changed (head-ends reconnect)")
	}
	for _, o := range ng.AccessOutputs {
		switch prev := old.AccessOutput(o.ID); {
		case prev == nil:
			add("add access output %s", o.ID)
		case !reflect.DeepEqual(*prev, *o):
			add("remake access output %s: its settings changed", o.ID)
		}
	}
	for _, o := range old.AccessOutputs {
		if ng.AccessOutput(o.ID) == nil {
			add("close access output %s", o.ID)
		}
	}
	if ng.HTTP != nil && old.HTTP != nil && (!reflect.DeepEqual(ng.HTTP.Tokens, old.HTTP.Tokens) || ng.HTTP.TokensFile != old.HTTP.TokensFile) {
		add("replace the HTTP API's tokens")
	}
	return out
}

// siteDiff returns the ids of the sites ng adds to old and of those it
// removes, in config order.
func siteDiff(old, ng *config.Gateway) (added, removed []string) {
	for _, s := range ng.Sites {
		if old.Site(s.ID) == nil {
			added = append(added, s.ID)
		}
	}
	for _, s := range old.Sites {
		if ng.Site(s.ID) == nil {
			removed = append(removed, s.ID)
		}
	}
	return added, removed
}

// siteChanges lists what changes in a site that stays: connections
// replaced, added or removed, points added, removed or rewired.
func siteChanges(old, s *site.Site) []string {
	var out []string
	for _, c := range s.SortedConnections() {
		switch oc := old.Connections[c.ID]; {
		case oc == nil:
			out = append(out, fmt.Sprintf("site %s: add connection %s", s.ID, c.ID))
		case !sameConnection(old, oc, s, c):
			out = append(out, fmt.Sprintf("site %s: replace connection %s: its settings changed (a new link; its points are read again)", s.ID, c.ID))
		}
	}
	for _, c := range old.SortedConnections() {
		if s.Connections[c.ID] == nil {
			out = append(out, fmt.Sprintf("site %s: close connection %s", s.ID, c.ID))
		}
	}
	var added, removed, rewired []string
	for _, id := range s.PointIDs() {
		p, op := s.Points[id], old.Points[id]
		switch {
		case op == nil:
			added = append(added, id)
		case p.Connection != op.Connection || !control.SameWire(op, p):
			rewired = append(rewired, id)
		}
	}
	for _, id := range old.PointIDs() {
		if s.Points[id] == nil {
			removed = append(removed, id)
		}
	}
	for _, l := range []struct {
		what string
		ids  []string
	}{{"add", added}, {"remove", removed}, {"rewire", rewired}} {
		if len(l.ids) > 0 {
			out = append(out, fmt.Sprintf("site %s: %s %s", s.ID, l.what, countedList(l.ids, "point")))
		}
	}
	return out
}

// overrideChanges lists the overrides in force that a reload to ng ends:
// their point is gone or their value is outside its new limits.
func overrideChanges(ng *config.Gateway, st control.Status) []string {
	var out []string
	for _, p := range st.Points {
		o := p.Override
		if o == nil {
			continue
		}
		var np *site.Point
		if s := ng.Site(p.Site); s != nil {
			np = s.Points[p.Point]
		}
		switch {
		case np == nil || !np.Writable():
			out = append(out, fmt.Sprintf("end the override on %s/%s by %s: the point is removed", p.Site, p.Point, o.Who))
		case control.CheckWrite(control.Write{Point: np, Value: o.Value}) != nil:
			out = append(out, fmt.Sprintf("end the override on %s/%s by %s: %g is outside the point's new limits", p.Site, p.Point, o.Who, o.Value))
		}
	}
	slices.Sort(out)
	return out
}

// plural is "1 point", "2 points".
func plural(n int, noun string) string {
	if n != 1 {
		noun += "s"
	}
	return fmt.Sprintf("%d %s", n, noun)
}

// countedList is "3 points (a, b, c)", naming at most eight.
func countedList(ids []string, noun string) string {
	const most = 8
	names := ids
	more := ""
	if len(ids) > most {
		names, more = ids[:most], fmt.Sprintf(" and %d more", len(ids)-most)
	}
	return fmt.Sprintf("%s (%s%s)", plural(len(ids), noun), strings.Join(names, ", "), more)
}

// sameConnection reports whether a connection keeps its driver across a
// reload: its protocol settings are unchanged.
func sameConnection(old *site.Site, oc *site.Connection, s *site.Site, c *site.Connection) bool {
	return reflect.DeepEqual(oc.OPCUA, c.OPCUA) && reflect.DeepEqual(oc.Modbus, c.Modbus) &&
		(c.Serial == nil || oc.Serial != nil && reflect.DeepEqual(serialOptions(old, oc), serialOptions(s, c)))
}

// checkReload is what Reload refuses before it applies anything: changes
// only a restart can apply.
func checkReload(old, ng *config.Gateway) error {
	if !reflect.DeepEqual(ng.HTTP != nil, old.HTTP != nil) || ng.HTTP != nil && (ng.HTTP.Listen != old.HTTP.Listen || !reflect.DeepEqual(ng.HTTP.TLS, old.HTTP.TLS)) {
		return fmt.Errorf("%w: the http listen address or certificate changed", errReloadChanges)
	}
	var why []string
	if ng.StateDir != old.StateDir {
		why = append(why, "the state directory changed")
	}
	if jn, jo := journalOptions(ng), journalOptions(old); jn.Retention != jo.Retention || jn.KeepPersonal != jo.KeepPersonal || jn.PersonalRetention != jo.PersonalRetention {
		why = append(why, "the journal's retention or the keeping of card holders changed")
	}
	if !reflect.DeepEqual(ng.Simulate, old.Simulate) { // a site's own device simulators follow the site
		why = append(why, "the simulate: section changed")
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: %s", errReloadChanges, strings.Join(why, "; "))
	}
	return nil
}
