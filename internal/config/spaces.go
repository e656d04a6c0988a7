package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/bmsgw/bmsgw/internal/site"
)

func (b *siteBuild) spaces(profiles map[string]site.Profile) {
	ids := map[string]Pos{}
	byID := map[string]*site.Space{}
	files := map[*site.Space]*Space{}
	for i := range b.mf.Spaces {
		f := &b.mf.Spaces[i]
		if !b.uniqueID(ids, f.ID, b.pos.Key(f, "id"), "space") {
			continue
		}
		sp := &site.Space{ID: f.ID, Name: f.Name, Kind: f.Kind, Resources: f.Resources}
		if sp.Kind == "" {
			sp.Kind = site.KindRoom
		}
		if f.Profile != "" {
			p, ok := profiles[f.Profile]
			if !ok {
				b.errs.add(b.pos.Key(f, "profile"), "space %q uses profile %q, which is not defined under profiles:%s", f.ID, f.Profile, didYouMean(f.Profile, keys(profiles)))
			}
			sp.Profile = p
		}
		for j := range f.Schedules {
			sc, ok := b.s.Schedules[f.Schedules[j]]
			if !ok {
				b.errs.add(b.pos.Of(&f.Schedules[j]), "space %q uses schedule %q, which is not defined under schedules:%s", f.ID, f.Schedules[j], didYouMean(f.Schedules[j], keys(b.s.Schedules)))
				continue
			}
			sp.Schedules = append(sp.Schedules, sc)
		}
		for j, r := range f.Resources {
			if strings.TrimSpace(r) == "" {
				b.errs.add(b.pos.Of(&f.Resources[j]), "space %q has an empty resource id", f.ID)
			}
		}
		byID[f.ID] = sp
		files[sp] = f
		b.s.Spaces = append(b.s.Spaces, sp)
	}
	for _, sp := range b.s.Spaces {
		f := files[sp]
		if f.Within == "" {
			continue
		}
		parent, ok := byID[f.Within]
		if !ok {
			b.errs.add(b.pos.Key(f, "within"), "space %q is within %q, which is not a space of this site%s", f.ID, f.Within, didYouMean(f.Within, keys(byID)))
			continue
		}
		sp.Parent = parent
		parent.Children = append(parent.Children, sp)
	}
	for _, sp := range b.s.Spaces {
		for p, n := sp.Parent, 0; p != nil; p, n = p.Parent, n+1 {
			if p == sp || n > len(b.s.Spaces) {
				b.errs.add(b.pos.Key(files[sp], "within"), "space %q is (indirectly) within itself; break the cycle", sp.ID)
				sp.Parent = nil
				break
			}
		}
	}
	for _, sp := range b.s.Spaces {
		if len(sp.Resources) == 0 && len(sp.Schedules) == 0 && len(sp.Children) == 0 && len(files[sp].Points) > 0 {
			b.errs.add(b.pos.Of(files[sp]), "space %q is never occupied: give it resources (booking ids), schedules, or spaces within it", sp.ID)
		}
	}

	// A point bound in several spaces follows them all, so its values must agree.
	type use struct {
		space    string
		occupied site.Value
		vacant   site.Value
	}
	uses := map[string]use{}
	for _, sp := range b.s.Spaces {
		f := files[sp]
		seen := map[string]bool{}
		for j := range f.Points {
			fb := &f.Points[j]
			if fb.Point == "" {
				continue
			}
			at := b.pos.Key(fb, "point")
			pt, ok := b.s.Points[fb.Point]
			if !ok {
				hint := didYouMean(fb.Point, keys(b.s.Points))
				if hint == "" {
					hint = "; declare it under points:, or name a template point as <device>.<point>"
				}
				b.errs.add(at, "space %q uses point %q, which is not defined%s", sp.ID, fb.Point, hint)
				continue
			}
			if seen[fb.Point] {
				b.errs.add(at, "space %q binds point %q twice; keep one", sp.ID, fb.Point)
				continue
			}
			seen[fb.Point] = true
			if !pt.Writable() {
				b.errs.add(at, "point %q is not writable; add access: write to it (at %s) or drop it from space %q", fb.Point, b.pointPos[fb.Point], sp.ID)
				continue
			}
			occ, ok1 := b.value(pt, fb.Occupied, b.pos.Key(fb, "occupied"))
			vac, ok2 := b.value(pt, fb.Vacant, b.pos.Key(fb, "vacant"))
			if !ok1 || !ok2 {
				continue
			}
			bd := site.Binding{Point: pt, Occupied: occ, Vacant: vac, Lead: sp.Profile.Lead, Lag: sp.Profile.Lag}
			if fb.Lead != nil {
				bd.Lead = *fb.Lead
			}
			if fb.Lag != nil {
				bd.Lag = *fb.Lag
			}
			if u, shared := uses[pt.ID]; shared {
				if !u.occupied.Equal(occ) || !u.vacant.Equal(vac) {
					b.errs.add(at, "point %q takes %s/%s (occupied/vacant) in space %q but %s/%s in space %q; a shared point needs the same values everywhere",
						pt.ID, pt.Format(occ), pt.Format(vac), sp.ID, pt.Format(u.occupied), pt.Format(u.vacant), u.space)
				}
			} else {
				uses[pt.ID] = use{sp.ID, occ, vac}
			}
			sp.Bindings = append(sp.Bindings, bd)
		}
	}
}

// value checks a mapping value against its point and converts it.
func (b *siteBuild) value(pt *site.Point, s *Scalar, at Pos) (site.Value, bool) {
	if s == nil {
		return site.Value{}, false
	}
	switch {
	case pt.Type == site.TypeBool:
		if s.Kind != "bool" {
			b.errs.add(at, "point %q is bool; write true or false, not %q", pt.ID, s.Text)
			return site.Value{}, false
		}
		if v, _ := strconv.ParseBool(s.Text); v {
			return site.Value{Num: 1}, true
		}
		return site.Value{Num: 0}, true
	case s.Kind == "label":
		v, ok := pt.Labels[s.Text]
		if !ok {
			if len(pt.Labels) == 0 {
				b.errs.add(at, "point %q has no labels; write a number, not %q", pt.ID, s.Text)
			} else {
				b.errs.add(at, "%q is not a label of point %q; use one of %s", s.Text, pt.ID, strings.Join(sortedKeys(pt.Labels), ", "))
			}
			return site.Value{}, false
		}
		return site.Value{Num: v, Label: s.Text}, true
	case s.Kind == "bool":
		b.errs.add(at, "point %q is %s; write a number%s, not %s", pt.ID, pt.Type, labelHint(pt), s.Text)
		return site.Value{}, false
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s.Text, "_", ""), 64)
	if err != nil {
		b.errs.add(at, "%q is not a number", s.Text)
		return site.Value{}, false
	}
	if len(pt.Labels) > 0 {
		if l := pt.Label(v); l != "" {
			return site.Value{Num: v, Label: l}, true
		}
		b.errs.add(at, "%g is not an allowed value of point %q; use one of %s", v, pt.ID, strings.Join(sortedKeys(pt.Labels), ", "))
		return site.Value{}, false
	}
	if pt.Min != nil && v < *pt.Min || pt.Max != nil && v > *pt.Max {
		b.errs.add(at, "%g is outside the limits of point %q (%s); change the value or the point's min/max", v, pt.ID, limits(pt))
		return site.Value{}, false
	}
	raw := (v - pt.Offset) / pt.Scale
	lo, hi := pt.Type.Range()
	if raw < lo || raw > hi {
		b.errs.add(at, "%g does not fit point %q: the raw value %g is outside the range of %s", v, pt.ID, raw, pt.Type)
		return site.Value{}, false
	}
	if pt.Type != site.TypeFloat32 && pt.Type != site.TypeFloat64 && math.Abs(raw-math.Round(raw)) > 1e-9 {
		b.errs.add(at, "%g cannot be written exactly to %s point %q with scale %g; use a multiple of %g", v, pt.Type, pt.ID, pt.Scale, pt.Scale)
		return site.Value{}, false
	}
	return site.Value{Num: v}, true
}

func limits(pt *site.Point) string {
	lo, hi := "-∞", "∞"
	if pt.Min != nil {
		lo = strconv.FormatFloat(*pt.Min, 'g', -1, 64)
	}
	if pt.Max != nil {
		hi = strconv.FormatFloat(*pt.Max, 'g', -1, 64)
	}
	return "min " + lo + ", max " + hi
}

func labelHint(pt *site.Point) string {
	if len(pt.Labels) == 0 {
		return ""
	}
	return " or a label (" + strings.Join(sortedKeys(pt.Labels), ", ") + ")"
}

func sortedKeys[V any](m map[string]V) []string {
	ks := keys(m)
	slices.Sort(ks)
	return ks
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func didYouMean(s string, candidates []string) string {
	if m := suggest(s, candidates); m != "" {
		return fmt.Sprintf("; did you mean %q?", m)
	}
	return ""
}
