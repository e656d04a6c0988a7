package access_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/access"
	"github.com/bmsgw/bmsgw/internal/booking"
)

// span is a grant without its key and reasons, for comparisons.
type span struct {
	Group, Door string
	From, To    string
	Mode        access.Mode
}

func spans(gs []access.Grant) []span {
	out := make([]span, len(gs))
	for i, g := range gs {
		out[i] = span{g.Group, g.Door, g.From.Format("01-02 15:04"), g.To.Format("01-02 15:04"), g.Mode}
	}
	return out
}

// DOMAIN.md section 5: the club's cards open the gym entrance
// 18:45-21:15 for its 19:00-21:00 booking, outside school hours: card only.
func TestBookingGetsItsDoorsWithMargins(t *testing.T) {
	b := bk("volley-1", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))
	gs := access.Grants(spec(1), []booking.Booking{b}, horizonFrom, horizonTo)
	require.Equal(t, []span{
		{"G1041", "gym_entrance", "11-26 18:45", "11-26 21:15", access.ModeCard},
		{"G1041", "gym_side", "11-26 18:45", "11-26 21:15", access.ModeCard},
	}, spans(gs))
	for _, g := range gs {
		require.Equal(t, []booking.Key{b.Key()}, g.Bookings)
		require.Equal(t, []string{"valby-volley"}, g.Organisers)
		require.Equal(t, cph, g.From.Location(), "grants are in the site's time")
		require.True(t, strings.HasPrefix(g.Key, "g-"), g.Key)
		require.NotContains(t, g.Key, "volley-1", "the key carries no booking id in clear")
	}
	require.NotEqual(t, gs[0].Key, gs[1].Key)
}

func TestPinSplitAtSchoolHours(t *testing.T) {
	cases := []struct {
		name       string
		start, end time.Time
		want       []span
	}{
		{"afternoon across 15:00", at(0, 14, 0), at(0, 16, 0), []span{
			{"org-chess", "wing_b_entrance", "11-26 13:45", "11-26 15:00", access.ModeCardPIN},
			{"org-chess", "wing_b_entrance", "11-26 15:00", "11-26 16:15", access.ModeCard},
		}},
		{"morning across 08:00", at(0, 7, 0), at(0, 9, 0), []span{
			{"org-chess", "wing_b_entrance", "11-26 06:45", "11-26 08:00", access.ModeCard},
			{"org-chess", "wing_b_entrance", "11-26 08:00", "11-26 09:15", access.ModeCardPIN},
		}},
		{"all day: card, card+PIN, card", at(0, 7, 0), at(0, 16, 0), []span{
			{"org-chess", "wing_b_entrance", "11-26 06:45", "11-26 08:00", access.ModeCard},
			{"org-chess", "wing_b_entrance", "11-26 08:00", "11-26 15:00", access.ModeCardPIN},
			{"org-chess", "wing_b_entrance", "11-26 15:00", "11-26 16:15", access.ModeCard},
		}},
		{"inside school hours", at(0, 10, 0), at(0, 11, 0), []span{
			{"org-chess", "wing_b_entrance", "11-26 09:45", "11-26 11:15", access.ModeCardPIN},
		}},
		{"teachers' day exception: card only", at(1, 10, 0), at(1, 11, 0), []span{
			{"org-chess", "wing_b_entrance", "11-27 09:45", "11-27 11:15", access.ModeCard},
		}},
		{"Saturday: card only", at(2, 10, 0), at(2, 11, 0), []span{
			{"org-chess", "wing_b_entrance", "11-28 09:45", "11-28 11:15", access.ModeCard},
		}},
		{"overnight into Monday's school hours", at(3, 23, 0), at(4, 8, 30), []span{
			{"org-chess", "wing_b_entrance", "11-29 22:45", "11-30 08:00", access.ModeCard},
			{"org-chess", "wing_b_entrance", "11-30 08:00", "11-30 08:45", access.ModeCardPIN},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := bk("chess-1", "res-room12", "chess", c.start, c.end)
			gs := access.Grants(spec(1), []booking.Booking{b}, horizonFrom, horizonTo)
			require.Equal(t, c.want, spans(gs))
			keys := map[string]bool{}
			for _, g := range gs {
				keys[g.Key] = true
			}
			require.Len(t, keys, len(gs), "each segment has its own key")
		})
	}
	t.Run("no PIN schedule: card always", func(t *testing.T) {
		s := spec(1)
		s.PinSchedule = nil
		gs := access.Grants(s, []booking.Booking{bk("c", "res-room12", "chess", at(0, 10, 0), at(0, 11, 0))}, horizonFrom, horizonTo)
		require.Equal(t, []span{{"org-chess", "wing_b_entrance", "11-26 09:45", "11-26 11:15", access.ModeCard}}, spans(gs))
	})
}

func TestBackToBackBookingsMergeUnderALimit(t *testing.T) {
	early := bk("volley-a", "res-gym", "valby-volley", at(0, 17, 0), at(0, 19, 0))
	late := bk("volley-b", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))
	s := spec(1)
	s.Spaces[0].Doors = []string{"gym_entrance"}

	gs := access.Grants(s, []booking.Booking{late, early}, horizonFrom, horizonTo)
	require.Equal(t, []span{{"G1041", "gym_entrance", "11-26 16:45", "11-26 21:15", access.ModeCard}}, spans(gs))
	require.Equal(t, []booking.Key{early.Key(), late.Key()}, gs[0].Bookings, "both bookings are the reasons")

	s.MaxPerGroupDoor = 0
	gs = access.Grants(s, []booking.Booking{late, early}, horizonFrom, horizonTo)
	require.Equal(t, []span{
		{"G1041", "gym_entrance", "11-26 16:45", "11-26 19:15", access.ModeCard},
		{"G1041", "gym_entrance", "11-26 18:45", "11-26 21:15", access.ModeCard},
	}, spans(gs), "without a limit each booking keeps its own grant")

	t.Run("touching windows merge too", func(t *testing.T) {
		s := spec(1)
		s.MarginBefore, s.MarginAfter = 0, 0
		gs := access.Grants(s, []booking.Booking{late, early}, horizonFrom, horizonTo)
		require.Equal(t, []span{
			{"G1041", "gym_entrance", "11-26 17:00", "11-26 21:00", access.ModeCard},
			{"G1041", "gym_side", "11-26 17:00", "11-26 21:00", access.ModeCard},
		}, spans(gs))
	})
	t.Run("other groups are not merged", func(t *testing.T) {
		other := bk("chess-x", "res-gym", "chess", at(0, 19, 0), at(0, 21, 0))
		gs := access.Grants(s, []booking.Booking{early, other}, horizonFrom, horizonTo)
		require.Len(t, gs, 2)
		require.Equal(t, "G1041", gs[0].Group)
		require.Equal(t, "org-chess", gs[1].Group)
	})
	t.Run("limit 2 keeps two overlapping, merges the third", func(t *testing.T) {
		s := spec(2)
		s.Spaces[0].Doors = []string{"gym_entrance"}
		third := bk("volley-c", "res-gym", "valby-volley", at(0, 18, 0), at(0, 20, 0))
		gs := access.Grants(s, []booking.Booking{early, late, third}, horizonFrom, horizonTo)
		require.Len(t, gs, 2)
		require.LessOrEqual(t, maxOverlap(gs)["G1041/gym_entrance"], 2)
	})
}

// maxOverlap returns, per group/door, the most grants holding at one
// instant; grants are half-open.
func maxOverlap(gs []access.Grant) map[string]int {
	type edge struct {
		at    time.Time
		delta int
	}
	byPair := map[string][]edge{}
	for _, g := range gs {
		p := g.Group + "/" + g.Door
		byPair[p] = append(byPair[p], edge{g.From, 1}, edge{g.To, -1})
	}
	out := map[string]int{}
	for p, es := range byPair {
		slices.SortFunc(es, func(a, b edge) int {
			if c := a.at.Compare(b.at); c != 0 {
				return c
			}
			return a.delta - b.delta
		})
		n := 0
		for _, e := range es {
			n += e.delta
			out[p] = max(out[p], n)
		}
	}
	return out
}

// randomBookings returns n bookings of a few clubs in the gym and room
// 12 over the reference week, some cancelled, some tentative.
func randomBookings(r *rand.Rand, n int) []booking.Booking {
	orgs := []string{"valby-volley", "chess", "valby-bk"}
	res := []string{"res-gym", "res-room12", "res-pitch"}
	out := make([]booking.Booking, n)
	for i := range out {
		start := at(r.IntN(7), 6+r.IntN(16), 15*r.IntN(4))
		b := bk(fmt.Sprintf("b%03d", i), res[r.IntN(len(res))], orgs[r.IntN(len(orgs))],
			start, start.Add(time.Duration(1+r.IntN(8))*30*time.Minute))
		switch r.IntN(10) {
		case 0:
			b.Status = booking.Cancelled
		case 1:
			b.Status = booking.Tentative
		}
		out[i] = b
	}
	return out
}

// Property: under any limit, no instant has more grants of a group at a
// door than the limit, every active booking's window is covered in full,
// nothing else is, and the result does not depend on input order.
func TestLimitHoldsAndWindowsAreCovered(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 40 {
		bs := randomBookings(r, 5+r.IntN(40))
		for _, limit := range []int{0, 1, 2, 3} {
			s := spec(limit)
			gs := access.Grants(s, bs, horizonFrom.AddDate(0, 0, -1), horizonTo.AddDate(0, 0, 1))
			if limit > 0 {
				for p, n := range maxOverlap(gs) {
					require.LessOrEqual(t, n, limit, "round %d limit %d %s", round, limit, p)
				}
			}
			// Coverage, checked at each quarter hour of the week.
			for tm := horizonFrom; tm.Before(horizonTo); tm = tm.Add(15 * time.Minute) {
				want := map[string]bool{}
				for _, b := range bs {
					if !b.Status.Active() {
						continue
					}
					if !b.Start.Add(-s.MarginBefore).After(tm) && b.End.Add(s.MarginAfter).After(tm) {
						for _, sp := range s.Spaces {
							if slices.Contains(sp.Resources, b.Resource) {
								for _, d := range sp.Doors {
									want[s.GroupOf(b.Organiser)+"/"+d] = true
								}
							}
						}
					}
				}
				got := map[string]bool{}
				for _, g := range gs {
					if !g.From.After(tm) && g.To.After(tm) {
						got[g.Group+"/"+g.Door] = true
						inPin := !tm.Before(time.Date(tm.Year(), tm.Month(), tm.Day(), 8, 0, 0, 0, cph)) &&
							tm.Before(time.Date(tm.Year(), tm.Month(), tm.Day(), 15, 0, 0, 0, cph)) &&
							tm.Weekday() >= time.Monday && tm.Weekday() <= time.Friday && tm.Day() != 27
						require.Equal(t, inPin, g.Mode == access.ModeCardPIN, "round %d at %s: %s", round, tm, g)
					}
				}
				require.Equal(t, want, got, "round %d limit %d at %s", round, limit, tm)
			}
			shuffled := slices.Clone(bs)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			require.Equal(t, gs, access.Grants(s, shuffled, horizonFrom.AddDate(0, 0, -1), horizonTo.AddDate(0, 0, 1)), "order-independent")
		}
	}
}

func TestKeysSurviveUnrelatedChanges(t *testing.T) {
	s := spec(1)
	volley := bk("volley-1", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))
	chess := bk("chess-1", "res-room12", "chess", at(0, 19, 0), at(0, 21, 0))
	keyOf := func(gs []access.Grant, group, door string) string {
		t.Helper()
		for _, g := range gs {
			if g.Group == group && g.Door == door {
				return g.Key
			}
		}
		t.Fatalf("no grant of %s at %s in %v", group, door, spans(gs))
		return ""
	}
	base := access.Grants(s, []booking.Booking{volley}, horizonFrom, horizonTo)
	k := keyOf(base, "G1041", "gym_entrance")

	withChess := access.Grants(s, []booking.Booking{volley, chess}, horizonFrom, horizonTo)
	require.Equal(t, k, keyOf(withChess, "G1041", "gym_entrance"), "another club's booking")

	moved := volley
	moved.Start, moved.End = at(0, 18, 0), at(0, 20, 0)
	require.Equal(t, k, keyOf(access.Grants(s, []booking.Booking{moved}, horizonFrom, horizonTo), "G1041", "gym_entrance"), "moved booking")

	// A later booking (larger key) merged in keeps the anchor.
	later := bk("volley-2", "res-gym", "valby-volley", at(0, 21, 0), at(0, 22, 0))
	merged := access.Grants(s, []booking.Booking{volley, later}, horizonFrom, horizonTo)
	require.Equal(t, k, keyOf(merged, "G1041", "gym_entrance"), "merged-in booking")

	cancelled := volley
	cancelled.Status = booking.Cancelled
	require.Empty(t, access.Grants(s, []booking.Booking{cancelled}, horizonFrom, horizonTo))
	superseded := volley
	superseded.Status = booking.Superseded
	require.Empty(t, access.Grants(s, []booking.Booking{superseded}, horizonFrom, horizonTo))
	tentative := volley
	tentative.Status = booking.Tentative
	require.Len(t, access.Grants(s, []booking.Booking{tentative}, horizonFrom, horizonTo), 2)
}

func TestSkippedBookingsAreReported(t *testing.T) {
	bs := []booking.Booking{
		bk("no-org", "res-gym", "", at(0, 19, 0), at(0, 21, 0)),
		bk("pitch", "res-pitch", "valby-bk", at(0, 18, 0), at(0, 20, 0)),
		bk("unknown", "res-nowhere", "valby-bk", at(0, 18, 0), at(0, 20, 0)),
		bk("backwards", "res-gym", "valby-volley", at(0, 21, 0), at(0, 19, 0)),
		{Source: "leisure", ID: "gone", Resource: "res-gym", Organiser: "x", Start: at(0, 1, 0), End: at(0, 2, 0), Status: booking.Cancelled},
	}
	c := access.Compute(spec(1), bs, horizonFrom, horizonTo)
	require.Empty(t, c.Grants)
	require.Equal(t, []access.Skip{
		{Booking: booking.Key{Source: "leisure", ID: "backwards"}, Reason: access.SkipBadTimes},
		{Booking: booking.Key{Source: "leisure", ID: "no-org"}, Reason: access.SkipNoOrganiser},
		{Booking: booking.Key{Source: "leisure", ID: "pitch"}, Reason: access.SkipNoDoors},
		{Booking: booking.Key{Source: "leisure", ID: "unknown"}, Reason: access.SkipNoDoors},
	}, c.Skipped)
}

func TestRangeKeepsOverlappingGrantsWhole(t *testing.T) {
	b := bk("chess-1", "res-room12", "chess", at(0, 14, 0), at(0, 16, 0))
	gs := access.Grants(spec(1), []booking.Booking{b}, at(0, 15, 30), at(0, 18, 0))
	require.Equal(t, []span{{"org-chess", "wing_b_entrance", "11-26 15:00", "11-26 16:15", access.ModeCard}}, spans(gs),
		"the card+PIN segment ended before the range; the card one is whole")
	require.Empty(t, access.Grants(spec(1), []booking.Booking{b}, at(0, 16, 15), at(0, 18, 0)), "ends as the range starts")
}

func TestDaylightSavingChange(t *testing.T) {
	// A Sunday-night booking over the end of summer time (2026-10-25,
	// 03:00 CEST becomes 02:00 CET): the margins are real durations.
	b := bk("night", "res-gym", "valby-volley", time.Date(2026, 10, 25, 1, 0, 0, 0, cph), time.Date(2026, 10, 25, 4, 0, 0, 0, cph))
	gs := access.Grants(spec(1), []booking.Booking{b}, time.Date(2026, 10, 24, 0, 0, 0, 0, cph), time.Date(2026, 10, 26, 0, 0, 0, 0, cph))
	require.Len(t, gs, 2)
	require.Equal(t, 4*time.Hour+30*time.Minute, gs[0].To.Sub(gs[0].From))
	require.Equal(t, "2026-10-25T00:45:00+02:00", gs[0].From.Format(time.RFC3339))
	require.Equal(t, "2026-10-25T04:15:00+01:00", gs[0].To.Format(time.RFC3339))
}

func TestSpecValidate(t *testing.T) {
	s := spec(-1)
	s.MarginBefore = -time.Minute
	s.Groups["chess"] = " "
	s.Spaces = append(s.Spaces, access.SpaceDoors{Space: "hall", Doors: []string{""}})
	err := s.Validate()
	require.ErrorIs(t, err, access.ErrSpec)
	for _, want := range []string{"margin_before -1m0s is negative", "max_per_group_door -1", `organiser "chess" is empty`,
		`space "hall" has doors but no booking resources`, `space "hall" has an empty door id`} {
		require.ErrorContains(t, err, want)
	}
	good := spec(1)
	require.NoError(t, good.Validate())
}
