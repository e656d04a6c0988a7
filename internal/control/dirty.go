package control

// dirtySet holds the points to compare again: a list in the order they
// were marked and a flag on each point, so that marking costs O(1) and a
// pass costs what the set holds now. (A Go map that once held 10,000
// points still walks all its buckets when nearly empty, and the loop
// passes over the set on every wake.)
type dirtySet struct {
	list []*pointState
}

// mark adds ps to the set.
func (d *dirtySet) mark(ps *pointState) {
	if !ps.dirty {
		ps.dirty = true
		d.list = append(d.list, ps)
	}
}

// unmark removes ps from the set.
func (*dirtySet) unmark(ps *pointState) { ps.dirty = false }

// each calls f for every point in the set, in the order they were
// marked; the points f unmarks leave the set. f must not mark points.
func (d *dirtySet) each(f func(ps *pointState)) {
	n := 0
	for _, ps := range d.list {
		if !ps.dirty {
			continue
		}
		f(ps)
		if ps.dirty {
			d.list[n] = ps
			n++
		}
	}
	clear(d.list[n:])
	d.list = d.list[:n]
}

// all marks every point of points.
func (d *dirtySet) all(points map[pointKey]*pointState) {
	for _, ps := range points {
		d.mark(ps)
	}
}
