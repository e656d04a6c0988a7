package uaserver

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/gopcuaserver"
)

// RootID is the string identifier of the gateway's top folder, which the
// server's Objects folder organises; every other node id is a path below
// the site ids: "<site>/<space>/<point>/<field>".
const RootID = "Gateway"

// node is one node of the served address space.
type node struct {
	id       string // string identifier in our namespace
	name     string // browse name: the last path element
	display  string
	folder   bool
	children []string

	// Variables only.
	typ    ua.TypeID
	value  any           // nil: no value, status says why
	status ua.StatusCode // used when value is nil
	// writable is set on the Override node of a point the options list;
	// site and point name the write's target, boolean its data type.
	writable    bool
	site, point string
	boolean     bool
	changed     time.Time
}

// dataValue returns the node's value as a DataValue.
func (n *node) dataValue() *ua.DataValue {
	if n.value == nil {
		return gopcuaserver.BadValue(n.status)
	}
	return goodValue(ua.MustVariant(n.value), n.changed)
}

// same reports whether two variable nodes show the same value.
func (n *node) same(o *node) bool {
	if n.status != o.status || (n.value == nil) != (o.value == nil) {
		return false
	}
	if a, ok := n.value.(time.Time); ok {
		b, ok := o.value.(time.Time)
		return ok && a.Equal(b)
	}
	return n.value == o.value
}

// tree is the address space built from one snapshot.
type tree struct {
	nodes map[string]*node
}

// buildTree builds the address space of a snapshot. writable holds
// "site/point" of the points whose Override node vendors may write. prev,
// if given, is the tree being replaced: unchanged values keep their
// timestamps. It fails when two nodes would get the same id.
func buildTree(s *Snapshot, writable map[string]bool, prev *tree) (*tree, error) {
	b := &treeBuilder{t: &tree{nodes: map[string]*node{}}, prev: prev, now: s.Time}
	if b.now.IsZero() {
		b.now = time.Now()
	}
	root := b.folder("", RootID, RootID)
	b.variable(root, "SnapshotTime", ua.TypeIDDateTime, timeOrNil(s.Time), ua.StatusGoodNoData)
	for _, site := range s.Sites {
		name := site.Name
		if name == "" {
			name = site.ID
		}
		sf := b.folder(root, site.ID, name)
		for _, sp := range site.Spaces {
			b.space(sf, site.ID, sp, writable)
		}
		for _, p := range site.Points {
			b.point(sf, site.ID, p, writable)
		}
		b.events(sf, site.Events)
		df := b.folder(sf, "Devices", "Devices")
		conns := map[string]string{}
		for _, d := range site.Devices {
			cf, ok := conns[d.Connection]
			if !ok {
				cf = b.folder(df, d.Connection, d.Connection)
				conns[d.Connection] = cf
			}
			f := b.folder(cf, d.Device, d.Device)
			b.variable(f, "Up", ua.TypeIDBoolean, d.Up, 0)
			b.variable(f, "Since", ua.TypeIDDateTime, timeOrNil(d.Since), ua.StatusGoodNoData)
			b.variable(f, "LastError", ua.TypeIDString, d.LastError, 0)
		}
	}
	// Site ids are lower case: "Feeds" cannot be one.
	ff := b.folder(root, "Feeds", "Feeds")
	for _, f := range s.Feeds {
		sf := b.folder(ff, f.Source, f.Source)
		b.variable(sf, "OK", ua.TypeIDBoolean, f.OK, 0)
		b.variable(sf, "LastSuccess", ua.TypeIDDateTime, timeOrNil(f.LastSuccess), ua.StatusGoodNoData)
		b.variable(sf, "ConsecutiveFailures", ua.TypeIDInt32, int32(min(f.ConsecutiveFailures, math.MaxInt32)), 0)
		b.variable(sf, "LastError", ua.TypeIDString, f.LastError, 0)
		b.variable(sf, "FromCache", ua.TypeIDBoolean, f.FromCache, 0)
		b.variable(sf, "FetchedAt", ua.TypeIDDateTime, timeOrNil(f.FetchedAt), ua.StatusGoodNoData)
		b.variable(sf, "Bookings", ua.TypeIDInt32, int32(min(f.Bookings, math.MaxInt32)), 0)
	}
	if err := errors.Join(b.errs...); err != nil {
		return nil, err
	}
	return b.t, nil
}

type treeBuilder struct {
	t    *tree
	prev *tree
	now  time.Time
	errs []error
}

func (b *treeBuilder) add(parent string, n *node) string {
	if parent != "" {
		n.id = parent + "/" + n.name
		if parent == RootID {
			n.id = n.name // site folders: the site id alone
		}
	}
	if _, dup := b.t.nodes[n.id]; dup {
		b.errs = append(b.errs, fmt.Errorf("%w: node id %q is used twice", ErrBadSnapshot, n.id))
		return n.id
	}
	b.t.nodes[n.id] = n
	if p := b.t.nodes[parent]; p != nil {
		p.children = append(p.children, n.id)
	}
	return n.id
}

func (b *treeBuilder) folder(parent, name, display string) string {
	id := name
	return b.add(parent, &node{id: id, name: name, display: display, folder: true})
}

// variable adds a variable; a nil value (or a nil *float64) is served
// with the status ifNil.
func (b *treeBuilder) variable(parent, name string, typ ua.TypeID, value any, ifNil ua.StatusCode) *node {
	if f, ok := value.(*float64); ok {
		value = nil
		if f != nil {
			value = *f
		}
	}
	n := &node{name: name, display: name, typ: typ, value: value, status: ifNil, changed: b.now}
	b.add(parent, n)
	if b.prev != nil {
		if old := b.prev.nodes[n.id]; old != nil && !old.folder && old.same(n) {
			n.changed = old.changed
		}
	}
	return n
}

func (b *treeBuilder) space(siteFolder, siteID string, sp Space, writable map[string]bool) {
	name := sp.Name
	if name == "" {
		name = sp.ID
	}
	f := b.folder(siteFolder, sp.ID, name)
	b.variable(f, "Occupied", ua.TypeIDBoolean, sp.Occupied, 0)
	var cs, ce, ns, ne any
	if sp.Current != nil {
		cs, ce = sp.Current.Start, sp.Current.End
	}
	if sp.Next != nil {
		ns, ne = sp.Next.Start, sp.Next.End
	}
	b.variable(f, "CurrentStart", ua.TypeIDDateTime, cs, ua.StatusGoodNoData)
	b.variable(f, "CurrentEnd", ua.TypeIDDateTime, ce, ua.StatusGoodNoData)
	b.variable(f, "NextStart", ua.TypeIDDateTime, ns, ua.StatusGoodNoData)
	b.variable(f, "NextEnd", ua.TypeIDDateTime, ne, ua.StatusGoodNoData)
	b.variable(f, "Organiser", ua.TypeIDString, sp.Organiser, 0)
	b.variable(f, "Source", ua.TypeIDString, sp.Source, 0)
	b.events(f, sp.Events)
	for _, p := range sp.Points {
		b.point(f, siteID, p, writable)
	}
}

func (b *treeBuilder) point(parent, siteID string, p Point, writable map[string]bool) {
	f := b.folder(parent, p.ID, p.ID)
	typ := ua.TypeIDDouble
	val := func(v *float64) any {
		if v == nil {
			return nil
		}
		if p.Bool {
			return *v != 0
		}
		return *v
	}
	if p.Bool {
		typ = ua.TypeIDBoolean
	}
	b.variable(f, "Desired", typ, val(p.Desired), ua.StatusBadWaitingForInitialData)
	b.variable(f, "Actual", typ, val(p.Actual), ua.StatusBadWaitingForInitialData)
	b.variable(f, "Source", ua.TypeIDString, p.Source, 0)
	b.variable(f, "InSync", ua.TypeIDBoolean, p.InSync, 0)
	b.variable(f, "Unit", ua.TypeIDString, p.Unit, 0)
	o := b.variable(f, "Override", typ, val(p.Override), ua.StatusGoodNoData)
	o.site, o.point, o.boolean = siteID, p.ID, p.Bool
	o.writable = writable[siteID+"/"+p.ID]
}

func (b *treeBuilder) events(parent string, evs []Event) {
	f := b.folder(parent, "Events", "Events")
	for i := range EventSlots {
		slot := b.folder(f, strconv.Itoa(i+1), strconv.Itoa(i+1))
		var t, kind, sev, msg any
		if i < len(evs) {
			e := evs[i]
			t, kind, sev, msg = timeOrNil(e.Time), e.Kind, e.Severity, e.Message
		}
		b.variable(slot, "Time", ua.TypeIDDateTime, t, ua.StatusGoodNoData)
		b.variable(slot, "Kind", ua.TypeIDString, kind, ua.StatusGoodNoData)
		b.variable(slot, "Severity", ua.TypeIDString, sev, ua.StatusGoodNoData)
		b.variable(slot, "Message", ua.TypeIDString, msg, ua.StatusGoodNoData)
	}
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// changedNodes returns the ids of variables whose value differs between
// old and t (or that appeared or disappeared), sorted.
func (t *tree) changedNodes(old *tree) []string {
	var out []string
	for id, n := range t.nodes {
		if n.folder {
			continue
		}
		if o := old.nodes[id]; o == nil || o.folder || !o.same(n) {
			out = append(out, id)
		}
	}
	for id, o := range old.nodes {
		if !o.folder && t.nodes[id] == nil {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}
