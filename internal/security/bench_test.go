package security

import (
	"fmt"
	"testing"
	"time"
)

type reading struct {
	point string
	value float64
}

// benchSite is 1,600 doors with five inputs each and 2,000 PIRs in 100
// armed areas: 10,100 input points (10,000 door and detector inputs plus
// the 100 armed read-backs). cycle is one round of readings in which every
// door is unlocked, opened through its inside handle after a grant,
// closed and locked again, and every PIR trips and rests: 15,200 readings
// that produce 6,800 events. The grant counters read 0 in the cycle; the
// callers replace that with the cycle's number, so each cycle counts one
// grant per door.
func benchSite() (Spec, []reading, []reading) {
	const doors, pirs, areas = 1600, 2000, 100
	var s Spec
	var setup []reading
	for a := range areas {
		id := fmt.Sprintf("a%d", a)
		s.Areas = append(s.Areas, AreaSpec{ID: id, Armed: &Input{Point: id + ".armed"}})
		setup = append(setup, reading{id + ".armed", 1})
	}
	for i := range doors {
		p := fmt.Sprintf("d%d.", i)
		s.Doors = append(s.Doors, DoorSpec{
			ID: fmt.Sprintf("d%d", i), Space: fmt.Sprintf("s%d", i%200), Area: fmt.Sprintf("a%d", i%areas),
			Deadbolt: &Input{Point: p + "bolt"}, Handle: &Input{Point: p + "handle"},
			Contact: &Input{Point: p + "contact", Invert: true}, Unlock: &Input{Point: p + "unlock"},
			Reader: &Input{Point: p + "grant"},
		})
		setup = append(setup, reading{p + "bolt", 1}, reading{p + "handle", 0}, reading{p + "contact", 1},
			reading{p + "unlock", 0}, reading{p + "grant", 0})
	}
	for i := range pirs {
		id := fmt.Sprintf("pir%d", i)
		s.Detectors = append(s.Detectors, DetectorSpec{ID: id, Kind: PIR, Point: id, Area: fmt.Sprintf("a%d", i%areas)})
		setup = append(setup, reading{id, 0})
	}
	var cycle []reading
	phase := func(f func(i int) []reading, n int) {
		for i := range n {
			cycle = append(cycle, f(i)...)
		}
	}
	d := func(i int, in string, v float64) reading { return reading{fmt.Sprintf("d%d.%s", i, in), v} }
	pir := func(i int, v float64) reading { return reading{fmt.Sprintf("pir%d", i), v} }
	phase(func(i int) []reading { return []reading{d(i, "grant", 0), d(i, "bolt", 0)} }, doors)
	phase(func(i int) []reading { return []reading{pir(i, 1)} }, pirs)
	phase(func(i int) []reading { return []reading{d(i, "handle", 1)} }, doors)
	phase(func(i int) []reading { return []reading{d(i, "contact", 0)} }, doors)
	phase(func(i int) []reading { return []reading{d(i, "handle", 0)} }, doors)
	phase(func(i int) []reading { return []reading{pir(i, 0)} }, pirs)
	phase(func(i int) []reading { return []reading{d(i, "contact", 1)} }, doors)
	phase(func(i int) []reading { return []reading{d(i, "bolt", 1)} }, doors)
	return s, setup, cycle
}

// BenchmarkObserve10kInputs measures readings through Observe against the
// same readings stored in a map (the least any consumer of readings
// does). One op is one reading.
func BenchmarkObserve10kInputs(b *testing.B) {
	spec, setup, cycle := benchSite()
	b.Run("monitor", func(b *testing.B) {
		m, err := NewMonitor("bench", spec, time.UTC)
		if err != nil {
			b.Fatal(err)
		}
		t := time.Date(2026, 3, 12, 12, 0, 0, 0, time.UTC)
		m.Advance(t)
		for _, r := range setup {
			m.Observe(r.point, r.value, true, t)
		}
		if n := len(m.Inputs()); n != 10100 {
			b.Fatalf("%d inputs", n)
		}
		grants := 0.0
		evs, i := 0, 0
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for b.Loop() {
			r := cycle[i]
			if i == 0 {
				grants++
			}
			v := r.value
			if len(r.point) > 6 && r.point[len(r.point)-6:] == ".grant" {
				v = grants
			}
			t = t.Add(time.Millisecond)
			evs += len(m.Observe(r.point, v, true, t))
			if i++; i == len(cycle) {
				i = 0
			}
		}
		elapsed := time.Since(start)
		if b.N >= len(cycle) && evs == 0 {
			b.Fatal("no events")
		}
		b.ReportMetric(float64(evs)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "readings/s")
	})
	b.Run("baseline_map", func(b *testing.B) {
		store := make(map[string]float64, len(setup))
		for _, r := range setup {
			store[r.point] = r.value
		}
		grants := 0.0
		i := 0
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for b.Loop() {
			r := cycle[i]
			if i == 0 {
				grants++
			}
			v := r.value
			if len(r.point) > 6 && r.point[len(r.point)-6:] == ".grant" {
				v = grants
			}
			if _, ok := store[r.point]; ok {
				store[r.point] = v
			}
			if i++; i == len(cycle) {
				i = 0
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "readings/s")
	})
}

// TestBenchCycle checks what the benchmark cycle produces, so the
// events/s it reports mean what they say.
func TestBenchCycle(t *testing.T) {
	spec, setup, cycle := benchSite()
	m, err := NewMonitor("bench", spec, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	tm := time.Date(2026, 3, 12, 12, 0, 0, 0, time.UTC)
	m.Advance(tm)
	for _, r := range setup {
		if ev := m.Observe(r.point, r.value, true, tm); len(ev) != 0 {
			t.Fatalf("setup raised %v", ev)
		}
	}
	count := map[string]int{}
	for c := 1; c <= 2; c++ {
		for _, r := range cycle {
			v := r.value
			if len(r.point) > 6 && r.point[len(r.point)-6:] == ".grant" {
				v = float64(c)
			}
			tm = tm.Add(time.Millisecond)
			for _, e := range m.Observe(r.point, v, true, tm) {
				count[string(e.Kind)]++
			}
		}
	}
	if len(cycle) != 15200 {
		t.Fatalf("cycle of %d readings", len(cycle))
	}
	want := map[string]int{"access_granted": 3200, "door_opened": 3200, "door_closed": 3200, "intrusion": 4000}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("two cycles raised %v, want %v", count, want)
	}
}
