// Package energy computes what booking-driven control saves against the
// old practice of heating and lighting through the whole lending period,
// and the open data export per space per day, and writes both as CSV,
// JSON and XLSX.
//
// Everything here is pure computation over a compiled plan
// (schedule.Compiler or schedule.Overlay), bookings and journal events;
// there is no I/O but the writers. Hours are real elapsed hours: a week
// with a daylight saving change has 167 or 169 of them.
package energy

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Spec declares what the energy report of one site needs that the mapping
// does not say: the lending period (the old practice's comfort hours) and,
// per space, its declared power and which bound points are its heating
// (and ventilation) and its lighting.
type Spec struct {
	// Site is the site reported on.
	Site *site.Site
	// Lending is the lending period: the weekly periods in which the
	// school lends its rooms, with the exception calendars that close it
	// (holidays). Under the old practice heat and light ran through all
	// of it on every lending day.
	Lending *site.Schedule
	// Spaces are the spaces reported, in report order.
	Spaces []SpaceSpec
}

// SpaceSpec declares one space of the report.
type SpaceSpec struct {
	// Space is the id of a space of the site.
	Space string
	// HeatingKW is the declared heating and ventilation power of the
	// space in kW while in comfort; 0 when unknown (no kWh estimate).
	HeatingKW float64
	// LightingKW is the declared lighting power in kW; 0 when unknown.
	LightingKW float64
	// Heating lists the ids of the points whose occupied value is the
	// space's comfort (air handler mode, room mode, setpoints); the space
	// is in comfort when any of them is occupied. Each must be bound to
	// the space or to a space that contains it.
	Heating []string
	// Lighting lists the ids of the points that enable the space's
	// lighting, bound like Heating.
	Lighting []string
}

// Validate checks the spec against its site and returns every problem
// found, or nil.
func (s *Spec) Validate() error {
	if s == nil || s.Site == nil {
		return errors.New("energy spec: no site")
	}
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("energy spec of site %s: "+format, append([]any{s.Site.ID}, args...)...))
	}
	if s.Lending == nil {
		add("no lending period")
	} else if len(s.Lending.Weekly) == 0 {
		add("lending period %q has no weekly periods", s.Lending.ID)
	}
	if len(s.Spaces) == 0 {
		add("no spaces")
	}
	seen := map[string]bool{}
	for i, ss := range s.Spaces {
		sp := s.Site.Space(ss.Space)
		switch {
		case ss.Space == "":
			add("space %d has no id", i+1)
			continue
		case sp == nil:
			add("space %q is not a space of the site", ss.Space)
			continue
		case seen[ss.Space]:
			add("space %q is listed twice", ss.Space)
		}
		seen[ss.Space] = true
		for _, p := range []struct {
			name string
			kw   float64
		}{{"heating_kw", ss.HeatingKW}, {"lighting_kw", ss.LightingKW}} {
			if math.IsNaN(p.kw) || math.IsInf(p.kw, 0) || p.kw < 0 {
				add("space %q: %s %v is not a power in kW (0 or more)", ss.Space, p.name, p.kw)
			}
		}
		if len(ss.Heating) == 0 && len(ss.Lighting) == 0 {
			add("space %q lists no heating and no lighting points", ss.Space)
		}
		if ss.HeatingKW > 0 && len(ss.Heating) == 0 {
			add("space %q declares heating_kw but lists no heating points", ss.Space)
		}
		if ss.LightingKW > 0 && len(ss.Lighting) == 0 {
			add("space %q declares lighting_kw but lists no lighting points", ss.Space)
		}
		for _, id := range ss.Heating {
			if slices.Contains(ss.Lighting, id) {
				add("space %q: point %q is listed as both heating and lighting", ss.Space, id)
			}
		}
		for _, id := range slices.Concat(ss.Heating, ss.Lighting) {
			if !boundWithin(sp, id) {
				if s.Site.Points[id] == nil {
					add("space %q: %q is not a point of the site", ss.Space, id)
				} else {
					add("space %q: point %q is not bound to the space or a space containing it, so the plan has no comfort windows for it", ss.Space, id)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// boundWithin reports whether a binding of sp or of a space containing it
// drives the point.
func boundWithin(sp *site.Space, pointID string) bool {
	for depth := 0; sp != nil && depth < 64; sp, depth = sp.Parent, depth+1 {
		for _, b := range sp.Bindings {
			if b.Point != nil && b.Point.ID == pointID {
				return true
			}
		}
	}
	return false
}

// location is the site's zone, UTC when it has none.
func (s *Spec) location() *time.Location {
	if s.Site.Location != nil {
		return s.Site.Location
	}
	return time.UTC
}

// SpecOf is the spec a site's mapping declares (its energy: section), nil
// for a site without one.
func SpecOf(s *site.Site) *Spec {
	if s.Energy == nil {
		return nil
	}
	spec := &Spec{Site: s, Lending: s.Energy.Lending}
	for _, es := range s.Energy.Spaces {
		ss := SpaceSpec{Space: es.Space.ID, HeatingKW: es.HeatingKW, LightingKW: es.LightingKW}
		for _, p := range es.Heating {
			ss.Heating = append(ss.Heating, p.ID)
		}
		for _, p := range es.Lighting {
			ss.Lighting = append(ss.Lighting, p.ID)
		}
		spec.Spaces = append(spec.Spaces, ss)
	}
	return spec
}
