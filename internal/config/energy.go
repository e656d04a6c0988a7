package config

import (
	"fmt"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Energy declares a site's energy report (see docs/energy.md).
type Energy struct {
	// Id of a schedule (under schedules:) that is the lending period: when heat and light ran under the old practice, e.g. weekdays 17:00-22:00 with the school holidays as exceptions.
	Lending string `yaml:"lending" jsonschema:"required"`
	// The spaces reported, with their declared power.
	Spaces []EnergySpace `yaml:"spaces" jsonschema:"required"`
}

// EnergySpace is one space of the energy report.
type EnergySpace struct {
	// Space id.
	Space string `yaml:"space" jsonschema:"required"`
	// Heating and ventilation power while in comfort, kW.
	HeatingKW float64 `yaml:"heating_kw,omitempty"`
	// Lighting power, kW.
	LightingKW float64 `yaml:"lighting_kw,omitempty"`
	// Points whose occupied value is the space's comfort (air handler mode, room mode, setpoints); bound to the space or a space around it.
	Heating []string `yaml:"heating,omitempty"`
	// Points that are the space's lights.
	Lighting []string `yaml:"lighting,omitempty"`
}

func (b *siteBuild) energy() {
	f := b.mf.Energy
	if f == nil {
		return
	}
	e := &site.Energy{Lending: b.s.Schedules[f.Lending]}
	if e.Lending == nil {
		b.errs.add(b.pos.Key(f, "lending"), "energy.lending %q is not defined under schedules:%s", f.Lending, didYouMean(f.Lending, keys(b.s.Schedules)))
	}
	seen := map[string]bool{}
	for i := range f.Spaces {
		fs := &f.Spaces[i]
		owner := fmt.Sprintf("energy space %q", fs.Space)
		sp := b.s.Space(fs.Space)
		if sp == nil {
			var ids []string
			for _, s := range b.s.Spaces {
				ids = append(ids, s.ID)
			}
			b.errs.add(b.pos.Key(fs, "space"), "%s is not a space of this site%s", owner, didYouMean(fs.Space, ids))
			continue
		}
		if seen[fs.Space] {
			b.errs.add(b.pos.Key(fs, "space"), "%s is listed twice", owner)
			continue
		}
		seen[fs.Space] = true
		es := site.EnergySpace{Space: sp, HeatingKW: fs.HeatingKW, LightingKW: fs.LightingKW}
		if fs.HeatingKW < 0 || fs.LightingKW < 0 {
			b.errs.add(b.pos.Of(fs), "%s: powers must not be negative", owner)
		}
		points := func(key string, ids []string) []*site.Point {
			var out []*site.Point
			for j, id := range ids {
				p := b.s.Points[id]
				if p == nil {
					b.errs.add(b.pos.Of(&ids[j]), "%s: %s point %q is not defined%s", owner, key, id, didYouMean(id, keys(b.s.Points)))
					continue
				}
				if !boundAround(sp, p) {
					b.errs.add(b.pos.Of(&ids[j]), "%s: %s point %q is not bound to space %q or a space around it", owner, key, id, sp.ID)
					continue
				}
				out = append(out, p)
			}
			return out
		}
		es.Heating = points("heating", fs.Heating)
		es.Lighting = points("lighting", fs.Lighting)
		if len(fs.Heating) == 0 && len(fs.Lighting) == 0 {
			b.errs.add(b.pos.Key(fs, "space"), "%s lists no heating: or lighting: points", owner)
		}
		e.Spaces = append(e.Spaces, es)
	}
	b.s.Energy = e
}

// boundAround reports whether p is bound to sp or to a space around it.
func boundAround(sp *site.Space, p *site.Point) bool {
	for s := sp; s != nil; s = s.Parent {
		for _, bd := range s.Bindings {
			if bd.Point == p {
				return true
			}
		}
	}
	return false
}
