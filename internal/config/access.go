package config

import (
	"net/url"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// AccessOutput is where access rights derived from bookings go: the
// access-control system's HTTP API or an export file. Exactly one of http
// and file is set.
type AccessOutput struct {
	// Unique id of the output, referred to by site mappings (access.outputs).
	ID string `yaml:"id" jsonschema:"required"`
	// Push grants to a JSON HTTP API: POST creates (the reply's "id" is kept as the grant's reference), PUT <url>/<ref> updates, DELETE <url>/<ref> revokes.
	HTTP *AccessHTTP `yaml:"http,omitempty"`
	// Write the current grants to a file that the access-control system imports.
	File *AccessFile `yaml:"file,omitempty"`
}

// AccessHTTP is an HTTP access output.
type AccessHTTP struct {
	// http(s) URL of the grants collection.
	URL string `yaml:"url" jsonschema:"required"`
	// Request headers, e.g. Authorization. Values are secrets: ${ENV_VAR} or file:/path.
	Headers map[string]Secret `yaml:"headers,omitempty"`
	// Timeout of one request. Default: 10s.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// The target's limit: at most this many simultaneous permissions per group and door; 0 for none. Default: 0.
	MaxPerGroupDoor int `yaml:"max_per_group_door,omitempty"`
}

// AccessFile is a file access output.
type AccessFile struct {
	// Path of the file, relative to the gateway config; written atomically.
	Path string `yaml:"path" jsonschema:"required"`
	// csv or json. Default: csv.
	Format AccessFormat `yaml:"format,omitempty"`
}

// AccessFormat is csv or json.
type AccessFormat string

func (AccessFormat) enumValues() []string { return []string{"csv", "json"} }

// AccessRights is a site's access rights from bookings.
type AccessRights struct {
	// The club's cards open the doors this long before a booking. Default: 15m.
	MarginBefore *time.Duration `yaml:"margin_before,omitempty"`
	// ... and this long after it. Default: 15m.
	MarginAfter *time.Duration `yaml:"margin_after,omitempty"`
	// Id of a schedule inside which the doors want card + PIN (school hours); card only outside it.
	PinSchedule string `yaml:"pin_schedule,omitempty"`
	// Access group of each (pseudonymous) organiser in the access-control system. Default: org-<organiser>.
	Groups map[string]string `yaml:"groups,omitempty"`
	// Ids of access_outputs in the gateway config that get this site's grants.
	Outputs []string `yaml:"outputs,omitempty"`
	// Door schedule points: a writable bool point per group and door, true while the group's grant is in force.
	Points []AccessPoint `yaml:"points,omitempty"`
}

// AccessPoint is a door schedule enable of one access group.
type AccessPoint struct {
	// Access group id.
	Group string `yaml:"group" jsonschema:"required"`
	// Door id.
	Door string `yaml:"door" jsonschema:"required"`
	// Writable bool point.
	Point string `yaml:"point" jsonschema:"required"`
}

// ResolvedAccessOutput is an access output with its secrets and paths
// resolved.
type ResolvedAccessOutput struct {
	ID              string
	URL             string
	Headers         map[string]Secret
	Timeout         time.Duration
	MaxPerGroupDoor int
	// File output: absolute path and format.
	Path   string
	Format string
}

func (l *loader) accessOutputs(g *Gateway, gf *GatewayFile, pos *Positions, dir string) {
	ids := map[string]Pos{}
	for i := range gf.AccessOutputs {
		o := &gf.AccessOutputs[i]
		if !l.uniqueID(ids, o.ID, pos.Key(o, "id"), "access output") {
			continue
		}
		if (o.HTTP == nil) == (o.File == nil) {
			l.errs.add(pos.Key(o, "id"), "access output %q needs exactly one of http: and file:", o.ID)
			continue
		}
		r := &ResolvedAccessOutput{ID: o.ID}
		if h := o.HTTP; h != nil {
			u, err := url.Parse(h.URL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				l.errs.add(pos.Key(h, "url"), "access output %q: url %q is not an http(s) URL", o.ID, h.URL)
				continue
			}
			if u.Scheme == "http" && !loopback(u.Host) {
				l.errs.add(pos.Key(h, "url"), "access output %q: url %q sends access rights unencrypted; use https:// (plain http is allowed on loopback only)", o.ID, h.URL)
			}
			if h.MaxPerGroupDoor < 0 {
				l.errs.add(pos.Key(h, "max_per_group_door"), "access output %q: max_per_group_door must not be negative", o.ID)
			}
			r.URL, r.Headers, r.Timeout, r.MaxPerGroupDoor = h.URL, h.Headers, h.Timeout, h.MaxPerGroupDoor
			if r.Timeout == 0 {
				r.Timeout = 10 * time.Second
			}
		} else {
			r.Path, r.Format = resolvePath(dir, o.File.Path), string(o.File.Format)
			if r.Format == "" {
				r.Format = "csv"
			}
		}
		g.AccessOutputs = append(g.AccessOutputs, r)
	}
}

// AccessOutput returns the access output with the given id, or nil.
func (g *Gateway) AccessOutput(id string) *ResolvedAccessOutput {
	for _, o := range g.AccessOutputs {
		if o.ID == id {
			return o
		}
	}
	return nil
}

// access resolves a site's access section, after doors and schedules.
func (b *siteBuild) access() {
	f := b.mf.AccessRights
	if f == nil {
		return
	}
	a := &site.AccessRights{MarginBefore: durOr(f.MarginBefore, 15*time.Minute), MarginAfter: durOr(f.MarginAfter, 15*time.Minute), Groups: f.Groups}
	if a.MarginBefore < 0 || a.MarginAfter < 0 {
		b.errs.add(b.pos.Of(f), "access margins must not be negative")
	}
	if f.PinSchedule != "" {
		a.PinSchedule = b.s.Schedules[f.PinSchedule]
		if a.PinSchedule == nil {
			b.errs.add(b.pos.Key(f, "pin_schedule"), "access.pin_schedule %q is not defined under schedules:%s", f.PinSchedule, didYouMean(f.PinSchedule, keys(b.s.Schedules)))
		}
	}
	for org, grp := range f.Groups {
		if grp == "" {
			b.errs.add(b.pos.Key(f, "groups"), "access group of organiser %q is empty", org)
		}
	}
	for i, id := range f.Outputs {
		if b.g.AccessOutput(id) == nil {
			var ids []string
			for _, o := range b.g.AccessOutputs {
				ids = append(ids, o.ID)
			}
			b.errs.add(b.pos.Of(&f.Outputs[i]), "access output %q is not defined under access_outputs: in %s%s", id, b.g.File, didYouMean(id, ids))
			continue
		}
		a.Outputs = append(a.Outputs, id)
	}
	doors := map[string]*site.Door{}
	for _, d := range b.s.Doors {
		doors[d.ID] = d
	}
	for i := range f.Points {
		ap := &f.Points[i]
		d := doors[ap.Door]
		if d == nil {
			b.errs.add(b.pos.Key(ap, "door"), "access point: door %q is not defined under doors:%s", ap.Door, didYouMean(ap.Door, keys(doors)))
		}
		p := b.s.Points[ap.Point]
		switch {
		case p == nil:
			b.errs.add(b.pos.Key(ap, "point"), "access point %q is not defined%s", ap.Point, didYouMean(ap.Point, keys(b.s.Points)))
		case !p.Writable() || p.Type != site.TypeBool:
			b.errs.add(b.pos.Key(ap, "point"), "access point %q must be a writable bool point", ap.Point)
			p = nil
		case b.bound(p) != "":
			b.errs.add(b.pos.Key(ap, "point"), "access point %q is also bound in space %q; a door schedule point needs its own point", ap.Point, b.bound(p))
			p = nil
		}
		if d != nil && p != nil {
			a.Points = append(a.Points, site.AccessPoint{Group: ap.Group, Door: d, Point: p})
		}
	}
	if len(a.Outputs) == 0 && len(a.Points) == 0 {
		b.errs.add(b.pos.Of(f), "access: has neither outputs: nor points:; the grants would go nowhere")
	}
	b.s.Access = a
}

// bound returns the id of a space that binds p, "" if none.
func (b *siteBuild) bound(p *site.Point) string {
	for _, sp := range b.s.Spaces {
		for _, bd := range sp.Bindings {
			if bd.Point == p {
				return sp.ID
			}
		}
	}
	return ""
}

// Privacy says what personal data the gateway may keep.
type Privacy struct {
	// Keep the card number read at a door's reader (door card:) with its events. Personal data: never exported or streamed, pruned after card_holder_retention. Default: false.
	KeepCardHolder bool `yaml:"keep_card_holder,omitempty"`
}

// JournalSettings tune the journal.
type JournalSettings struct {
	// Entries older than this are pruned; 0 keeps them forever. Default: 0.
	Retention time.Duration `yaml:"retention,omitempty"`
	// Card numbers kept with events (privacy.keep_card_holder) are erased after this. Default: 720h (30 days).
	CardHolderRetention time.Duration `yaml:"card_holder_retention,omitempty"`
}
