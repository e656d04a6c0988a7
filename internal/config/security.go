package config

import (
	"fmt"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// The access and alarm side of a site mapping: doors, detectors, alarm
// areas, occupancy evidence, card-enabled lights and the patrol round.

// InputRef is a point read as a bool input.
type InputRef struct {
	// Point id. A value other than 0 is true.
	Point string `yaml:"point" jsonschema:"required"`
	// Flip the input, e.g. a normally closed door loop that reads 1 when the door is closed. Default: false.
	Invert bool `yaml:"invert,omitempty"`
}

// Door is a door with its lock. Every input is optional; true means: bolt thrown, handle pressed, door open, unlock output on, access granted.
type Door struct {
	// Unique id of the door within the site.
	ID string `yaml:"id" jsonschema:"required"`
	// Name for people, e.g. "Gym side door".
	Name string `yaml:"name,omitempty"`
	// Id of the space the door serves (card use there is evidence of use; its bookings' groups get the door).
	Space string `yaml:"space" jsonschema:"required"`
	// Id of the alarm area the door belongs to (at most one).
	Area string `yaml:"area,omitempty"`
	// Deadbolt microswitch: true when the bolt is thrown.
	Deadbolt *InputRef `yaml:"deadbolt,omitempty"`
	// Handle: true while pressed.
	Handle *InputRef `yaml:"handle,omitempty"`
	// Door contact: true when the door is open (set invert for a loop that reads 1 when closed).
	Contact *InputRef `yaml:"contact" jsonschema:"required"`
	// Second loop of a double-loop contact; it must agree with contact, else a wire fault is reported.
	ContactB *InputRef `yaml:"contact_b,omitempty"`
	// The access system's own unlock output: true while it holds the door unlocked.
	Unlock *InputRef `yaml:"unlock,omitempty"`
	// Access granted at the door's reader: a counter that increments, or a pulse.
	Reader *InputRef `yaml:"reader,omitempty"`
	// The card number read at the reader. Personal data: stored with the grant's event only when privacy.keep_card_holder is set.
	Card string `yaml:"card,omitempty"`
	// A door open longer than this is held open. Default: 2m.
	HeldOpenAfter time.Duration `yaml:"held_open_after,omitempty"`
	// An opening this long after a grant, or while the unlock output is on, is authorised. Default: 10s.
	GrantValid time.Duration `yaml:"grant_valid,omitempty"`
	// A door still unlocked this long after the last window of its space is left unlocked. Default: 15m.
	LeftUnlockedAfter time.Duration `yaml:"left_unlocked_after,omitempty"`
}

// DetectorKind is the kind of a detector.
type DetectorKind = site.DetectorKind

// Detector is an intrusion or safety detector of one alarm area.
type Detector struct {
	// Unique id of the detector within the site.
	ID string `yaml:"id" jsonschema:"required"`
	// contact, pir, microwave, dual_tech, glass_break, panic or water_flow.
	Kind DetectorKind `yaml:"kind" jsonschema:"required"`
	// The detector's point (for dual_tech: the first technology).
	Point string `yaml:"point" jsonschema:"required"`
	// Flip the input. Default: false.
	Invert bool `yaml:"invert,omitempty"`
	// dual_tech only: the second technology's point.
	PointB string `yaml:"point_b,omitempty"`
	// dual_tech only: both must trip within this time. Default: 10s.
	Within time.Duration `yaml:"within,omitempty"`
	// water_flow only: a flow above this is active. Default: 0.
	Above *float64 `yaml:"above,omitempty"`
	// Id of the alarm area the detector belongs to.
	Area string `yaml:"area" jsonschema:"required"`
}

// AreaControl is panel or direct.
type AreaControl string

func (AreaControl) enumValues() []string { return []string{"panel", "direct"} }

// Area is an alarm area. It should be disarmed inside the occupancy windows of its space, widened by disarm_before and rearm_after, and armed outside them.
type Area struct {
	// Unique id of the area within the site.
	ID string `yaml:"id" jsonschema:"required"`
	// Name for people.
	Name string `yaml:"name,omitempty"`
	// Id of the space whose bookings and schedules drive the area (usually a wing holding the booked rooms).
	Space string `yaml:"space" jsonschema:"required"`
	// Disarm this long before a window. Default: 15m.
	DisarmBefore *time.Duration `yaml:"disarm_before,omitempty"`
	// Re-arm this long after a window. Default: 15m.
	RearmAfter *time.Duration `yaml:"rearm_after,omitempty"`
	// The armed state read back from the alarm panel: true when armed.
	Armed *InputRef `yaml:"armed" jsonschema:"required"`
	// A writable point through which the area's schedule is handed to the panel: authorised inside the windows, unauthorised outside.
	Authorisation *AreaOutput `yaml:"authorisation,omitempty"`
	// Time between the arm command and the area being armed. Default: 30s.
	ExitDelay *time.Duration `yaml:"exit_delay,omitempty"`
	// The area not armed this long after a window (plus the exit delay) is a mismatch. Default: 5m.
	MismatchAfter *time.Duration `yaml:"mismatch_after,omitempty"`
	// Night hours: water flow in the armed area then is a leak alarm. Default: 22:00 to 06:00.
	Night *DayPeriod `yaml:"night,omitempty"`
	// panel (the certified alarm panel arms; default) or direct (the gateway pulses arm and disarm outputs; needs direct:).
	Control AreaControl `yaml:"control,omitempty"`
	// Outputs for control: direct.
	Direct *DirectControl `yaml:"direct,omitempty"`
}

// AreaOutput is the point that carries an area's schedule to the panel.
type AreaOutput struct {
	// Writable point id.
	Point string `yaml:"point" jsonschema:"required"`
	// Value inside the area's windows (disarm allowed). Default: true or 1.
	Authorised *Scalar `yaml:"authorised,omitempty"`
	// Value outside them. Default: false or 0.
	Unauthorised *Scalar `yaml:"unauthorised,omitempty"`
}

// DirectControl are the outputs the gateway pulses to arm and disarm an area itself.
type DirectControl struct {
	// Writable bool point pulsed to arm.
	Arm string `yaml:"arm" jsonschema:"required"`
	// Writable bool point pulsed to disarm.
	Disarm string `yaml:"disarm" jsonschema:"required"`
	// Pulse length. Default: 2s.
	Pulse time.Duration `yaml:"pulse,omitempty"`
	// Why direct control is allowed here, e.g. "uninsured hall, keyswitch input" (required: arming by the gateway is outside EN 50131-3 certification).
	Acknowledge string `yaml:"acknowledge" jsonschema:"required"`
}

// Evidence is one source of evidence that a space is in use. Set door, or point.
type Evidence struct {
	// A card granted at this door.
	Door string `yaml:"door,omitempty"`
	// A point: with above, a value above it (flow); with rise, an increase since the booking started (pulse counter, CO2); with neither, true (motion).
	Point string `yaml:"point,omitempty"`
	// Evidence when the value is above this.
	Above *float64 `yaml:"above,omitempty"`
	// Evidence when the value rose this much since the booking started.
	Rise *float64 `yaml:"rise,omitempty"`
}

// NoShow declares no-show detection.
type NoShow struct {
	// A booking with no evidence this long after its start is a no-show: an event, and the space's points released to vacant.
	Grace time.Duration `yaml:"grace" jsonschema:"required"`
	// Evidence this long before the start counts. Default: 15m.
	Before *time.Duration `yaml:"before,omitempty"`
}

// LightsByCard gates lights on a card.
type LightsByCard struct {
	// Doors whose card grants enable the lights.
	Doors []string `yaml:"doors,omitempty"`
	// Bool points (push buttons) that enable the lights.
	Buttons []string `yaml:"buttons,omitempty"`
	// Points of this space's bindings that are gated; the others follow occupancy as usual.
	Points []string `yaml:"points" jsonschema:"required"`
	// A card this long before a window counts for it. Default: 10m.
	Early *time.Duration `yaml:"early,omitempty"`
	// A warning before the lights go off at the end of the window.
	Warning *LightsWarning `yaml:"warning,omitempty"`
}

// LightsWarning is the warning blink before lights switch off.
type LightsWarning struct {
	// How long before the end of the window.
	Before time.Duration `yaml:"before" jsonschema:"required"`
	// How long the lights are off for the blink. Default: 3s.
	Blink time.Duration `yaml:"blink,omitempty"`
}

// Round is the virtual patrol round.
type Round struct {
	// The round runs this long after the day's last window of the site. Default: 5m.
	After *time.Duration `yaml:"after,omitempty"`
}

func durOr(d *time.Duration, def time.Duration) time.Duration {
	if d != nil {
		return *d
	}
	return def
}

// input resolves an input reference.
func (b *siteBuild) input(ref *InputRef, owner string) *site.Input {
	if ref == nil || ref.Point == "" {
		return nil
	}
	p := b.s.Points[ref.Point]
	if p == nil {
		b.errs.add(b.pos.Key(ref, "point"), "%s uses point %q, which is not defined%s", owner, ref.Point, didYouMean(ref.Point, keys(b.s.Points)))
		return nil
	}
	return &site.Input{Point: p, Invert: ref.Invert}
}

// security resolves doors, areas, detectors, evidence, card-enabled lights
// and the round, after spaces and points.
func (b *siteBuild) security() {
	spaceIDs := make([]string, 0, len(b.s.Spaces))
	for _, sp := range b.s.Spaces {
		spaceIDs = append(spaceIDs, sp.ID)
	}
	space := func(id string, at Pos, owner string) *site.Space {
		if id == "" {
			return nil
		}
		sp := b.s.Space(id)
		if sp == nil {
			b.errs.add(at, "%s names space %q, which is not a space of this site%s", owner, id, didYouMean(id, spaceIDs))
		}
		return sp
	}

	// Areas first: doors and detectors refer to them.
	areas := map[string]*site.Area{}
	ids := map[string]Pos{}
	for i := range b.mf.Areas {
		f := &b.mf.Areas[i]
		if !b.uniqueID(ids, f.ID, b.pos.Key(f, "id"), "area") {
			continue
		}
		owner := fmt.Sprintf("area %q", f.ID)
		a := &site.Area{
			ID: f.ID, Name: f.Name,
			Space:         space(f.Space, b.pos.Key(f, "space"), owner),
			DisarmBefore:  durOr(f.DisarmBefore, 15*time.Minute),
			RearmAfter:    durOr(f.RearmAfter, 15*time.Minute),
			Armed:         b.input(f.Armed, owner),
			ExitDelay:     durOr(f.ExitDelay, 30*time.Second),
			MismatchAfter: durOr(f.MismatchAfter, 5*time.Minute),
			Night:         site.Period{From: 22 * 60, To: 6 * 60},
			Control:       site.ControlPanel,
		}
		if f.Night != nil && f.Night.From != nil && f.Night.To != nil {
			a.Night = site.Period{From: f.Night.From.Clock, To: f.Night.To.Clock}
		}
		for _, d := range []struct {
			key string
			v   time.Duration
		}{{"disarm_before", a.DisarmBefore}, {"rearm_after", a.RearmAfter}, {"exit_delay", a.ExitDelay}, {"mismatch_after", a.MismatchAfter}} {
			if d.v < 0 {
				b.errs.add(b.pos.Key(f, d.key), "%s: %s must not be negative", owner, d.key)
			}
		}
		if f.Authorisation != nil {
			b.areaOutput(a, f, owner)
		}
		switch f.Control {
		case "direct":
			if f.Direct == nil {
				b.errs.add(b.pos.Key(f, "control"), "%s has control: direct but no direct: section; add direct: {arm, disarm, acknowledge} or use control: panel", owner)
				break
			}
			a.Control = site.ControlDirect
			a.Arm = b.pulsePoint(f.Direct, "arm", f.Direct.Arm, owner)
			a.Disarm = b.pulsePoint(f.Direct, "disarm", f.Direct.Disarm, owner)
			a.Pulse = f.Direct.Pulse
			if a.Pulse == 0 {
				a.Pulse = 2 * time.Second
			}
			if f.Direct.Acknowledge == "" {
				b.errs.add(b.pos.Key(f.Direct, "arm"), "%s: direct control needs acknowledge: saying why the gateway may arm this area itself (outside EN 50131-3 certification)", owner)
			}
		default:
			if f.Direct != nil {
				b.errs.add(b.pos.Key(f, "direct"), "%s has direct: outputs but control is panel; set control: direct to let the gateway arm and disarm it", owner)
			}
		}
		areas[f.ID] = a
		b.s.Areas = append(b.s.Areas, a)
	}
	areaIDs := keys(areas)
	area := func(id string, at Pos, owner string) *site.Area {
		if id == "" {
			return nil
		}
		a := areas[id]
		if a == nil {
			b.errs.add(at, "%s names alarm area %q, which is not defined under areas:%s", owner, id, didYouMean(id, areaIDs))
		}
		return a
	}

	doors := map[string]*site.Door{}
	ids = map[string]Pos{}
	for i := range b.mf.Doors {
		f := &b.mf.Doors[i]
		if !b.uniqueID(ids, f.ID, b.pos.Key(f, "id"), "door") {
			continue
		}
		owner := fmt.Sprintf("door %q", f.ID)
		d := &site.Door{
			ID: f.ID, Name: f.Name,
			Space:    space(f.Space, b.pos.Key(f, "space"), owner),
			Area:     area(f.Area, b.pos.Key(f, "area"), owner),
			Deadbolt: b.input(f.Deadbolt, owner), Handle: b.input(f.Handle, owner),
			Contact: b.input(f.Contact, owner), ContactB: b.input(f.ContactB, owner),
			Unlock: b.input(f.Unlock, owner), Reader: b.input(f.Reader, owner),
			HeldOpenAfter: f.HeldOpenAfter, GrantValid: f.GrantValid, LeftUnlockedAfter: f.LeftUnlockedAfter,
		}
		if d.HeldOpenAfter == 0 {
			d.HeldOpenAfter = 2 * time.Minute
		}
		if d.GrantValid == 0 {
			d.GrantValid = 10 * time.Second
		}
		if d.LeftUnlockedAfter == 0 {
			d.LeftUnlockedAfter = 15 * time.Minute
		}
		if f.Card != "" {
			d.Card = b.s.Points[f.Card]
			switch {
			case d.Card == nil:
				b.errs.add(b.pos.Key(f, "card"), "%s: card point %q is not defined%s", owner, f.Card, didYouMean(f.Card, keys(b.s.Points)))
			case f.Reader == nil:
				b.errs.add(b.pos.Key(f, "card"), "%s has a card point but no reader:; the card is read with the grant", owner)
			}
		}
		if f.ContactB != nil && f.Contact == nil {
			b.errs.add(b.pos.Key(f, "contact_b"), "%s has contact_b but no contact; contact_b is the second loop of a double-loop contact", owner)
		}
		if d.Space != nil {
			d.Space.Doors = append(d.Space.Doors, d)
		}
		if d.Area != nil {
			d.Area.Doors = append(d.Area.Doors, d)
		}
		doors[f.ID] = d
		b.s.Doors = append(b.s.Doors, d)
	}
	doorIDs := keys(doors)
	door := func(id string, at Pos, owner string, needReader bool) *site.Door {
		d := doors[id]
		switch {
		case d == nil:
			b.errs.add(at, "%s names door %q, which is not defined under doors:%s", owner, id, didYouMean(id, doorIDs))
		case needReader && d.Reader == nil:
			b.errs.add(at, "%s counts cards at door %q, which has no reader:; add reader: {point: ...} to the door", owner, id)
			return nil
		}
		return d
	}

	ids = map[string]Pos{}
	for i := range b.mf.Detectors {
		f := &b.mf.Detectors[i]
		if !b.uniqueID(ids, f.ID, b.pos.Key(f, "id"), "detector") {
			continue
		}
		owner := fmt.Sprintf("detector %q", f.ID)
		d := &site.Detector{ID: f.ID, Kind: f.Kind, Within: f.Within,
			Input: b.input(&InputRef{Point: f.Point, Invert: f.Invert}, owner),
			Area:  area(f.Area, b.pos.Key(f, "area"), owner)}
		if f.Point != "" && d.Input == nil {
			// input() reported at the InputRef, which has no position; say where.
			b.errs.add(b.pos.Key(f, "point"), "%s: point %q is not defined", owner, f.Point)
		}
		if f.Kind == site.DetectorDualTech {
			if f.PointB == "" {
				b.errs.add(b.pos.Key(f, "kind"), "%s is dual_tech and needs point_b: the second technology's point", owner)
			} else if p := b.s.Points[f.PointB]; p == nil {
				b.errs.add(b.pos.Key(f, "point_b"), "%s uses point %q, which is not defined%s", owner, f.PointB, didYouMean(f.PointB, keys(b.s.Points)))
			} else {
				d.InputB = &site.Input{Point: p, Invert: f.Invert}
			}
			if d.Within == 0 {
				d.Within = 10 * time.Second
			}
		} else {
			if f.PointB != "" {
				b.errs.add(b.pos.Key(f, "point_b"), "%s: point_b is for dual_tech detectors only", owner)
			}
			if b.pos.Has(f, "within") {
				b.errs.add(b.pos.Key(f, "within"), "%s: within is for dual_tech detectors only", owner)
			}
		}
		if f.Invert && f.Kind == site.DetectorWaterFlow {
			b.errs.add(b.pos.Key(f, "invert"), "%s: a water_flow detector reads a flow; invert does not apply", owner)
		}
		if f.Above != nil {
			if f.Kind != site.DetectorWaterFlow {
				b.errs.add(b.pos.Key(f, "above"), "%s: above is for water_flow detectors only", owner)
			}
			d.Above = *f.Above
		}
		if d.Area != nil {
			d.Area.Detectors = append(d.Area.Detectors, d)
		}
		b.s.Detectors = append(b.s.Detectors, d)
	}

	b.occupancy(door)
	b.access()
	b.energy()
	if p := b.mf.Privacy; p != nil {
		b.s.KeepCardHolder = p.KeepCardHolder
	}

	if b.mf.Round != nil {
		b.s.Round = &site.Round{After: durOr(b.mf.Round.After, 5*time.Minute)}
		if b.s.Round.After < 0 {
			b.errs.add(b.pos.Key(b.mf.Round, "after"), "round: after must not be negative")
		}
	}
}

// areaOutput binds an area's authorisation point to its space, widened by
// the area's margins, so the compiler plans it like any other binding.
func (b *siteBuild) areaOutput(a *site.Area, f *Area, owner string) {
	o := f.Authorisation
	at := b.pos.Key(o, "point")
	p := b.s.Points[o.Point]
	switch {
	case p == nil:
		b.errs.add(at, "%s: authorisation point %q is not defined%s", owner, o.Point, didYouMean(o.Point, keys(b.s.Points)))
		return
	case !p.Writable():
		b.errs.add(at, "%s: authorisation point %q is not writable; add access: write to it", owner, o.Point)
		return
	}
	on, off := site.Value{Num: 1}, site.Value{Num: 0}
	var ok = true
	if o.Authorised != nil {
		on, ok = b.value(p, o.Authorised, b.pos.Key(o, "authorised"))
	}
	if o.Unauthorised != nil {
		var ok2 bool
		off, ok2 = b.value(p, o.Unauthorised, b.pos.Key(o, "unauthorised"))
		ok = ok && ok2
	}
	if !ok || a.Space == nil {
		return
	}
	for _, sp := range b.s.Spaces {
		for _, bd := range sp.Bindings {
			if bd.Point == p {
				b.errs.add(at, "%s: authorisation point %q is also bound in space %q; give the area its own point", owner, o.Point, sp.ID)
				return
			}
		}
	}
	a.Authorisation, a.AuthorisedValue, a.UnauthorisedValue = p, on, off
	a.Space.Bindings = append(a.Space.Bindings, site.Binding{Point: p, Occupied: on, Vacant: off, Lead: a.DisarmBefore, Lag: a.RearmAfter})
}

func (b *siteBuild) pulsePoint(d *DirectControl, key, id, owner string) *site.Point {
	at := b.pos.Key(d, key)
	p := b.s.Points[id]
	switch {
	case p == nil:
		b.errs.add(at, "%s: %s output %q is not defined%s", owner, key, id, didYouMean(id, keys(b.s.Points)))
	case !p.Writable() || p.Type != site.TypeBool:
		b.errs.add(at, "%s: %s output %q must be a writable bool point", owner, key, id)
		return nil
	}
	return p
}

// occupancy resolves evidence, no-show and card-enabled lights of spaces.
func (b *siteBuild) occupancy(door func(id string, at Pos, owner string, needReader bool) *site.Door) {
	for i := range b.mf.Spaces {
		f := &b.mf.Spaces[i]
		sp := b.s.Space(f.ID)
		if sp == nil {
			continue
		}
		owner := fmt.Sprintf("space %q", f.ID)
		for j := range f.Evidence {
			e := &f.Evidence[j]
			switch {
			case (e.Door == "") == (e.Point == ""):
				b.errs.add(b.pos.Of(e), "%s: evidence needs exactly one of door and point", owner)
				continue
			case e.Door != "":
				if e.Above != nil || e.Rise != nil {
					b.errs.add(b.pos.Of(e), "%s: above and rise apply to point evidence, not to a door", owner)
				}
				if d := door(e.Door, b.pos.Key(e, "door"), owner, true); d != nil {
					sp.Evidence = append(sp.Evidence, site.Evidence{Door: d})
				}
			default:
				p := b.s.Points[e.Point]
				if p == nil {
					b.errs.add(b.pos.Key(e, "point"), "%s: evidence point %q is not defined%s", owner, e.Point, didYouMean(e.Point, keys(b.s.Points)))
					continue
				}
				if e.Above != nil && e.Rise != nil {
					b.errs.add(b.pos.Of(e), "%s: evidence point %q has both above and rise; keep one", owner, e.Point)
					continue
				}
				if e.Rise != nil && *e.Rise <= 0 {
					b.errs.add(b.pos.Key(e, "rise"), "%s: rise must be above 0", owner)
				}
				sp.Evidence = append(sp.Evidence, site.Evidence{Point: p, Above: e.Above, Rise: e.Rise})
			}
		}
		if f.NoShow != nil {
			ns := &site.NoShow{Grace: f.NoShow.Grace, Before: durOr(f.NoShow.Before, 15*time.Minute)}
			switch {
			case ns.Grace <= 0:
				b.errs.add(b.pos.Key(f.NoShow, "grace"), "%s: no_show grace must be above 0, e.g. 20m", owner)
			case len(f.Evidence) == 0:
				b.errs.add(b.pos.Key(f, "no_show"), "%s has no_show but no evidence:; list the doors and points that show the space is in use", owner)
			case len(sp.Resources) == 0:
				b.errs.add(b.pos.Key(f, "no_show"), "%s has no_show but no resources:; only booked spaces can be no-shows", owner)
			}
			sp.NoShow = ns
		}
		if l := f.LightsByCard; l != nil {
			lc := &site.LightsByCard{Early: durOr(l.Early, 10*time.Minute)}
			for j, id := range l.Doors {
				if d := door(id, b.pos.Of(&l.Doors[j]), owner, true); d != nil {
					lc.Doors = append(lc.Doors, d)
				}
			}
			for j, id := range l.Buttons {
				p := b.s.Points[id]
				if p == nil {
					b.errs.add(b.pos.Of(&l.Buttons[j]), "%s: button point %q is not defined%s", owner, id, didYouMean(id, keys(b.s.Points)))
					continue
				}
				lc.Buttons = append(lc.Buttons, p)
			}
			if len(l.Doors) == 0 && len(l.Buttons) == 0 {
				b.errs.add(b.pos.Key(f, "lights_by_card"), "%s: lights_by_card needs doors: or buttons: that enable the lights", owner)
			}
			for j, id := range l.Points {
				var bound *site.Point
				for _, bd := range sp.Bindings {
					if bd.Point.ID == id {
						bound = bd.Point
					}
				}
				if bound == nil {
					b.errs.add(b.pos.Of(&l.Points[j]), "%s: lights_by_card point %q is not bound in this space; list it under the space's points: first", owner, id)
					continue
				}
				lc.Points = append(lc.Points, bound)
			}
			if w := l.Warning; w != nil {
				lc.WarningBefore, lc.WarningBlink = w.Before, w.Blink
				if lc.WarningBlink == 0 {
					lc.WarningBlink = 3 * time.Second
				}
				if lc.WarningBefore <= lc.WarningBlink {
					b.errs.add(b.pos.Key(w, "before"), "%s: the warning must start more than its blink (%s) before the end", owner, lc.WarningBlink)
				}
			}
			if len(sp.Resources) == 0 {
				b.errs.add(b.pos.Key(f, "lights_by_card"), "%s has lights_by_card but no resources:; card-enabled lights follow bookings", owner)
			}
			sp.LightsByCard = lc
		}
	}
}
