// Package sitegen generates a deterministic, Copenhagen-scale data set for
// benchmarks, load tests and demonstrations: schools with wings, rooms,
// gyms, halls and pitches, their BMS points, a school-day schedule with
// Danish holidays, and a season of weekly booking series, both as an
// iCalendar feed and as expanded bookings.
package sitegen

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Config says what to generate. The zero value generates the default data
// set: 72 schools, seed 1, season 2026-08-10 to 2027-06-25.
type Config struct {
	// Schools is the number of schools; default 72.
	Schools int
	// Seed seeds the generator: the same configuration always gives the
	// same data set. Default 1.
	Seed uint64
	// Source is the booking source id of the feed; default "kk-booking".
	Source string
	// SeasonStart and SeasonEnd bound the school year and the booking
	// season, inclusive; default 2026-08-10 and 2027-06-25.
	SeasonStart, SeasonEnd site.Date
}

// Default values of Config.
const (
	DefaultSchools = 72
	DefaultSeed    = 1
	DefaultSource  = "kk-booking"
)

// Dataset is a generated set of sites and their booking series.
type Dataset struct {
	Sites  []*site.Site
	Series []Series
	// Source is the booking source id of every booking.
	Source string
	// Location is Europe/Copenhagen, the zone of every site and series.
	Location               *time.Location
	SeasonStart, SeasonEnd site.Date
}

// Generate builds the data set described by cfg.
func Generate(cfg Config) (*Dataset, error) {
	if cfg.Schools == 0 {
		cfg.Schools = DefaultSchools
	}
	if cfg.Seed == 0 {
		cfg.Seed = DefaultSeed
	}
	if cfg.Source == "" {
		cfg.Source = DefaultSource
	}
	if cfg.SeasonStart == (site.Date{}) {
		cfg.SeasonStart = site.Date{Year: 2026, Month: time.August, Day: 10}
	}
	if cfg.SeasonEnd == (site.Date{}) {
		cfg.SeasonEnd = site.Date{Year: 2027, Month: time.June, Day: 25}
	}
	if cfg.Schools < 0 {
		return nil, fmt.Errorf("generate sites: %d schools", cfg.Schools)
	}
	if cfg.SeasonEnd.Before(cfg.SeasonStart) {
		return nil, fmt.Errorf("generate sites: season ends %s before it starts %s", cfg.SeasonEnd, cfg.SeasonStart)
	}
	loc, err := time.LoadLocation("Europe/Copenhagen")
	if err != nil {
		return nil, fmt.Errorf("generate sites: %w", err)
	}
	g := &generator{
		cfg: cfg,
		loc: loc,
		// PCG is specified exactly, so the data set does not change with
		// the Go version.
		rng:    rand.New(rand.NewPCG(cfg.Seed, 0x626d7367772d6765)),
		demand: make(map[*site.Space]string),
		ds:     &Dataset{Source: cfg.Source, Location: loc, SeasonStart: cfg.SeasonStart, SeasonEnd: cfg.SeasonEnd},
	}
	g.associations()
	for i := range cfg.Schools {
		s := g.school(i)
		g.ds.Sites = append(g.ds.Sites, s)
		g.bookings(s, i)
	}
	return g.ds, nil
}

type generator struct {
	cfg Config
	loc *time.Location
	rng *rand.Rand
	ds  *Dataset
	// orgs are pseudonymous association ids, shared by all schools as
	// clubs book in several of them.
	orgs []string
	// demand names the booking demand of each bookable space.
	demand map[*site.Space]string
}

func (g *generator) associations() {
	n := max(50, g.cfg.Schools*20)
	g.orgs = make([]string, n)
	for i := range g.orgs {
		g.orgs[i] = fmt.Sprintf("assoc-%08x", g.rng.Uint32())
	}
}

// districts name the schools; past the list, names get a number.
var districts = []string{
	"Valby", "Vigerslev", "Kirkebjerg", "Lykkebo", "Bavnehøj", "Sydhavn", "Amager Fælled", "Sundby",
	"Nørrebro Park", "Husum", "Brønshøj", "Tingbjerg", "Vanløse", "Østerbro", "Kildevæld", "Langelinie",
	"Randersgade", "Vesterbro", "Ørestad", "Islands Brygge", "Christianshavn", "Bellahøj", "Utterslev", "Emdrup",
	"Skolen ved Sundet", "Holmens", "Katrinedal", "Bispebjerg", "Søndermark", "Peder Lykke", "Kløvermark", "Hanssted",
	"Blågård", "Guldberg", "Rådmandsgade", "Hillerødgade", "Strandvejen", "Sortedam", "Frederiksberg Allé", "Gasværksvej",
	"Ellebjerg", "Tove Ditlevsen", "Grøndal", "Rødkilde", "Lundehus", "Ålholm", "Kongens Enghave", "Sankt Annæ",
	"Øster Farimagsgade", "Heibergskolen", "Dyvekeskolen", "Amagerbro", "Sønderbro", "Sølvgade", "Nyboder", "Kirsebærhaven",
	"Vibenshus", "Lergravsparken", "Strandparken", "Kastrupvej", "Engvej", "Højdevang", "Skolen på Islands Brygge", "Gerbrandskolen",
	"Bellahøj Nord", "Husum Park", "Vanløse Syd", "Valby Langgade", "Hvidovrevej", "Mozarts Plads", "Sydhavn Nord", "Nørrebro Syd",
}

// Profiles by space kind. The gym's one hour lead is DOMAIN.md section 5.
var profiles = map[site.SpaceKind]site.Profile{
	site.KindRoom:  {ID: "classroom", Lead: 30 * time.Minute, Lag: 15 * time.Minute, MergeGap: 30 * time.Minute, MinWindow: time.Hour},
	site.KindGym:   {ID: "gym", Lead: time.Hour, Lag: 15 * time.Minute, MergeGap: time.Hour, MinWindow: time.Hour},
	site.KindHall:  {ID: "hall", Lead: time.Hour, Lag: 15 * time.Minute, MergeGap: time.Hour, MinWindow: time.Hour},
	site.KindPitch: {ID: "pitch", Lag: 5 * time.Minute, MergeGap: 15 * time.Minute},
	site.KindWing:  {ID: "wing", Lead: time.Hour, MergeGap: time.Hour, MinWindow: time.Hour},
}

// Values the generated points take.
var (
	modeLabels  = map[string]float64{"off": 0, "economy": 1, "comfort": 2}
	comfort     = site.Value{Num: 2, Label: "comfort"}
	economy     = site.Value{Num: 1, Label: "economy"}
	enabled     = site.Value{Num: 1}
	disabled    = site.Value{Num: 0}
	setpointMin = 15.0
	setpointMax = 25.0
)

// schoolBuilder collects one school's spaces and points.
type schoolBuilder struct {
	s *site.Site
}

func (b *schoolBuilder) space(id, name string, kind site.SpaceKind, parent *site.Space, bookable bool) *site.Space {
	sp := &site.Space{ID: id, Name: name, Kind: kind, Profile: profiles[kind]}
	if parent != nil {
		sp.Parent = parent
		parent.Children = append(parent.Children, sp)
	}
	if bookable {
		sp.Resources = []string{b.s.ID + "-" + id}
	}
	b.s.Spaces = append(b.s.Spaces, sp)
	return sp
}

func (b *schoolBuilder) point(id, device, desc string, typ site.DataType) *site.Point {
	p := &site.Point{
		ID:          id,
		Device:      device,
		Connection:  "bms",
		Description: desc,
		Type:        typ,
		Access:      site.AccessWrite,
		Scale:       1,
		OPCUA:       &site.OPCUAAddress{NodeID: "ns=2;s=" + b.s.ID + "." + id},
	}
	b.s.Points[id] = p
	return p
}

// mode binds an HVAC mode point: comfort when occupied, economy when not.
func (b *schoolBuilder) mode(sp *site.Space, device string) {
	p := b.point(device+".mode", device, "HVAC mode of "+sp.Name, site.TypeUint16)
	p.Labels = modeLabels
	sp.Bindings = append(sp.Bindings, site.Binding{Point: p, Occupied: comfort, Vacant: economy, Lead: sp.Profile.Lead, Lag: sp.Profile.Lag})
}

// setpoint binds a room temperature setpoint with its limits.
func (b *schoolBuilder) setpoint(sp *site.Space, occupied, vacant float64) {
	p := b.point(sp.ID+".setpoint", sp.ID, "Temperature setpoint of "+sp.Name, site.TypeFloat32)
	p.Unit = "°C"
	p.Min, p.Max = &setpointMin, &setpointMax
	sp.Bindings = append(sp.Bindings, site.Binding{Point: p, Occupied: site.Value{Num: occupied}, Vacant: site.Value{Num: vacant}, Lead: sp.Profile.Lead, Lag: sp.Profile.Lag})
}

// enable binds a light enable: on only inside the window itself.
func (b *schoolBuilder) enable(sp *site.Space, id, desc string) {
	p := b.point(id, sp.ID, desc, site.TypeBool)
	sp.Bindings = append(sp.Bindings, site.Binding{Point: p, Occupied: enabled, Vacant: disabled})
}

// school generates school i: three classroom wings with about 30
// classrooms and four special rooms, a sports wing with one or two gyms
// and a hall, and one or two floodlit pitches, about 40 bookable spaces
// in all.
func (g *generator) school(i int) *site.Site {
	name := districts[i%len(districts)] + " Skole"
	if i >= len(districts) {
		name = fmt.Sprintf("%s %d", name, i/len(districts)+1)
	}
	s := &site.Site{
		ID:        fmt.Sprintf("skole-%02d", i+1),
		Name:      name,
		Location:  g.loc,
		Sources:   []site.SourceRef{{Source: g.cfg.Source}},
		Points:    map[string]*site.Point{},
		Schedules: map[string]*site.Schedule{},
		Calendars: map[string]*site.Calendar{},
		File:      fmt.Sprintf("generated/skole-%02d.yaml", i+1),
	}
	b := &schoolBuilder{s: s}
	schoolDay := g.schedule(s, i)

	gyms := 1 + g.chance(0.6)
	pitches := 1 + g.chance(0.5)
	specials := []string{"Musiklokale", "Natur/teknik", "Sløjd", "Skolekøkken"}
	classrooms := 40 - gyms - 1 - pitches - len(specials) + g.rng.IntN(5) - 2

	wings := make([]*site.Space, 3)
	for w := range wings {
		letter := string(rune('a' + w))
		wings[w] = b.space("wing-"+letter, "Fløj "+strings.ToUpper(letter), site.KindWing, nil, false)
		b.mode(wings[w], "wing-"+letter+".ahu")
	}
	room := func(id, name, demand string, wing *site.Space) {
		sp := b.space(id, name, site.KindRoom, wing, true)
		g.demand[sp] = demand
		sp.Schedules = []*site.Schedule{schoolDay}
		b.mode(sp, id)
		b.setpoint(sp, 21, 17)
		b.enable(sp, id+".lights", "Light enable of "+name)
	}
	for r := range classrooms {
		wing := wings[r*len(wings)/classrooms]
		room(fmt.Sprintf("room-%02d", r+1), fmt.Sprintf("Klasselokale %d", r+1), "room", wing)
	}
	for k, name := range specials {
		room(fmt.Sprintf("special-%d", k+1), name, "special", wings[k%len(wings)])
	}

	sports := b.space("sports-wing", "Idrætsfløj", site.KindWing, nil, false)
	b.mode(sports, "sports-wing.ahu")
	hall := func(id, name string, kind site.SpaceKind, school bool) {
		sp := b.space(id, name, kind, sports, true)
		g.demand[sp] = string(kind)
		if school {
			// Physical education uses the gyms in school hours.
			sp.Schedules = []*site.Schedule{schoolDay}
		}
		b.mode(sp, id+".ahu")
		b.setpoint(sp, 19, 15)
		b.enable(sp, id+".lights", "Light enable of "+name)
	}
	for k := range gyms {
		hall(fmt.Sprintf("gym-%d", k+1), fmt.Sprintf("Gymnastiksal %d", k+1), site.KindGym, true)
	}
	hall("hall", "Festsal", site.KindHall, false)
	for k := range pitches {
		id := fmt.Sprintf("pitch-%d", k+1)
		sp := b.space(id, fmt.Sprintf("Kunstgræsbane %d", k+1), site.KindPitch, nil, true)
		g.demand[sp] = "pitch"
		b.enable(sp, id+".floodlight", "Floodlight enable of "+sp.Name)
	}
	s.KeepPointIDs()
	return s
}

// schedule builds the school-day schedule of school i: Monday to Friday
// 08:00-15:00, closed on public and school holidays, with two one-off
// days of their own hours.
func (g *generator) schedule(s *site.Site, i int) *site.Schedule {
	y := g.cfg.SeasonStart.Year
	public := publicHolidays(y, g.cfg.SeasonEnd.Year)
	holidays := schoolHolidays(y)
	// A short last day before Christmas, and a school party that keeps
	// the school open into the evening on a Thursday in spring, in a week
	// without holidays.
	weeks := []int{10, 11, 14, 15, 16, 17, 19, 20}
	party := isoWeekMonday(y+1, weeks[i%len(weeks)]).AddDays(3)
	events := &site.Calendar{ID: "school_events", Days: []site.ExceptionDay{
		{From: site.Date{Year: y, Month: time.December, Day: 18}, To: site.Date{Year: y, Month: time.December, Day: 18},
			Name: "Juleafslutning", Hours: []site.Period{{From: 8 * 60, To: 12 * 60}}},
		{From: party, To: party, Name: "Skolefest", Hours: []site.Period{{From: 8 * 60, To: 21 * 60}}},
	}}
	weekdays := [7]bool{time.Monday: true, time.Tuesday: true, time.Wednesday: true, time.Thursday: true, time.Friday: true}
	sched := &site.Schedule{
		ID:         "school_day",
		Weekly:     []site.WeeklyPeriod{{Days: weekdays, From: 8 * 60, To: 15 * 60}},
		Exceptions: []*site.Calendar{public, holidays, events},
	}
	s.Schedules[sched.ID] = sched
	for _, c := range sched.Exceptions {
		s.Calendars[c.ID] = c
	}
	return sched
}

// chance returns 1 with probability p, else 0.
func (g *generator) chance(p float64) int {
	if g.rng.Float64() < p {
		return 1
	}
	return 0
}
