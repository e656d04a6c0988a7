package events

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newBus opens a journal on a new database and a bus on it; all are
// closed when the test ends.
func newBus(t *testing.T, jopts journal.Options, opts Options) (*Bus, *journal.Journal, *store.DB) {
	t.Helper()
	db, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "journal.db"))
	require.NoError(t, err)
	jopts.Logger = slog.New(slog.DiscardHandler)
	j, err := journal.Open(t.Context(), db, jopts)
	require.NoError(t, err)
	b, err := NewBus(t.Context(), j, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		b.Close()
		require.NoError(t, j.Close(context.Background()))
		require.NoError(t, db.Close())
	})
	return b, j, db
}

var t0 = time.Date(2026, 11, 26, 21, 20, 0, 0, time.UTC)

func forced(at time.Time) Event {
	return Event{
		Time: at, Site: "valby-skole", Space: "gym", Kind: DoorForced, Severity: Alarm, Subject: "gym_side_door",
		Points: []string{"gym_side_door.contact", "gym_side_door.bolt"}, Booking: "central:4711", Organiser: "org-12",
		Message: "gym side door opened while locked, no grant", CardHolder: "Jens Jensen",
	}
}

// recv takes the next event of s, failing the test if C is closed.
func recv(t *testing.T, s *Subscription) Event {
	t.Helper()
	select {
	case e, ok := <-s.C:
		require.True(t, ok, "subscription ended: %v", s.Err())
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return Event{}
}

func TestPublishStoresThenStreamsWithoutCardHolder(t *testing.T) {
	b, _, _ := newBus(t, journal.Options{KeepPersonal: true, PersonalRetention: 24 * time.Hour}, Options{})
	ctx := t.Context()
	sub, err := b.Subscribe(Filter{})
	require.NoError(t, err)
	defer sub.Cancel()

	in := forced(t0)
	out, err := b.Publish(ctx, in)
	require.NoError(t, err)
	require.Positive(t, out.ID)
	require.Equal(t, "Jens Jensen", out.CardHolder, "kept: the journal and the mapping allow it")

	// Publish returned, so the subscriber already has it.
	select {
	case got := <-sub.C:
		want := out
		want.CardHolder = ""
		require.Equal(t, want, got, "streams never carry the card holder")
	default:
		t.Fatal("Publish returned before the subscriber had the event")
	}

	stored, err := b.Query(ctx, Filter{})
	require.NoError(t, err)
	require.Equal(t, []Event{{ID: out.ID, Time: t0, Site: in.Site, Space: in.Space, Kind: in.Kind, Severity: in.Severity,
		Subject: in.Subject, Points: in.Points, Booking: in.Booking, Organiser: in.Organiser, Message: in.Message}}, stored)
	stored, err = b.Query(ctx, Filter{Personal: true})
	require.NoError(t, err)
	require.Equal(t, "Jens Jensen", stored[0].CardHolder)
}

func TestPublishSetsTheTimeWhenMissing(t *testing.T) {
	b, _, _ := newBus(t, journal.Options{}, Options{Now: func() time.Time { return t0.In(time.FixedZone("CET", 3600)) }})
	e := forced(time.Time{})
	out, err := b.Publish(t.Context(), e)
	require.NoError(t, err)
	require.Equal(t, t0, out.Time)
	require.Equal(t, time.UTC, out.Time.Location())
	require.Empty(t, out.CardHolder, "the journal keeps no personal data unless told")
}

func TestPublishRefusesInvalidEvents(t *testing.T) {
	b, _, db := newBus(t, journal.Options{}, Options{})
	for name, tc := range map[string]struct {
		mod  func(*Event)
		want string
	}{
		"no site":          {func(e *Event) { e.Site = "" }, "without a site"},
		"unknown kind":     {func(e *Event) { e.Kind = "door_held" }, `unknown kind "door_held"`},
		"no kind":          {func(e *Event) { e.Kind = "" }, `unknown kind ""`},
		"unknown severity": {func(e *Event) { e.Severity = "major" }, `unknown severity "major"`},
		"no message":       {func(e *Event) { e.Message = "" }, "without a message"},
		"already stored":   {func(e *Event) { e.ID = 7 }, "already published as id 7"},
	} {
		t.Run(name, func(t *testing.T) {
			e := forced(t0)
			tc.mod(&e)
			_, err := b.Publish(t.Context(), e)
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, tc.want)
		})
	}
	n, err := Query(t.Context(), db, Filter{})
	require.NoError(t, err)
	require.Empty(t, n)
}

func TestSubscriptionsFilter(t *testing.T) {
	b, _, _ := newBus(t, journal.Options{}, Options{})
	ctx := t.Context()
	alarms, err := b.Subscribe(Filter{MinSeverity: Alarm})
	require.NoError(t, err)
	gymDoors, err := b.Subscribe(Filter{Site: "valby-skole", Space: "gym", Kinds: []Kind{DoorForced, DoorHeldOpen}})
	require.NoError(t, err)
	ev := func(site, space string, k Kind, s Severity) Event {
		return Event{Time: t0, Site: site, Space: space, Kind: k, Severity: s, Message: string(k)}
	}
	var ids []int64
	for _, e := range []Event{
		ev("valby-skole", "gym", DoorHeldOpen, Warning),  // gymDoors
		ev("valby-skole", "hall", DoorForced, Alarm),     // alarms
		ev("valby-skole", "gym", Panic, Critical),        // alarms
		ev("oerestad-skole", "gym", DoorForced, Alarm),   // alarms
		ev("valby-skole", "gym", DoorForced, Alarm),      // both
		ev("valby-skole", "gym", LightsEnabled, Info),    // neither
		ev("valby-skole", "gym", DoorHeldOpen, Critical), // both
	} {
		out, err := b.Publish(ctx, e)
		require.NoError(t, err)
		ids = append(ids, out.ID)
	}
	take := func(s *Subscription, n int) []int64 {
		var got []int64
		for range n {
			got = append(got, recv(t, s).ID)
		}
		s.Cancel()
		_, open := <-s.C
		require.False(t, open, "no more events than expected")
		require.NoError(t, s.Err(), "cancelled, not dropped")
		return got
	}
	require.Equal(t, []int64{ids[1], ids[2], ids[3], ids[4], ids[6]}, take(alarms, 5))
	require.Equal(t, []int64{ids[0], ids[4], ids[6]}, take(gymDoors, 3))
}

func TestSlowSubscriberIsDroppedAndResumesFromTheJournal(t *testing.T) {
	b, _, _ := newBus(t, journal.Options{}, Options{Buffer: 2})
	ctx := t.Context()
	slow, err := b.Subscribe(Filter{})
	require.NoError(t, err)
	fast, err := b.Subscribe(Filter{})
	require.NoError(t, err)
	defer fast.Cancel()

	var ids []int64
	for i := range 6 {
		out, err := b.Publish(ctx, forced(t0.Add(time.Duration(i)*time.Second))) // never blocks on slow
		require.NoError(t, err)
		ids = append(ids, out.ID)
		require.Equal(t, out.ID, recv(t, fast).ID)
	}
	var got []int64
	for e := range slow.C {
		got = append(got, e.ID)
	}
	require.Equal(t, ids[:2], got, "the buffer's worth, in order")
	require.ErrorIs(t, slow.Err(), ErrLagged)

	rest, err := b.Query(ctx, Filter{SinceID: got[len(got)-1]})
	require.NoError(t, err)
	for _, e := range rest {
		got = append(got, e.ID)
	}
	require.Equal(t, ids, got, "resuming from the journal by id loses nothing")
}

func TestConcurrentPublishersStreamInIDOrder(t *testing.T) {
	b, j, _ := newBus(t, journal.Options{}, Options{Buffer: 1000})
	ctx := t.Context()
	sub, err := b.Subscribe(Filter{})
	require.NoError(t, err)
	defer sub.Cancel()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				e := forced(t0)
				e.Message = fmt.Sprintf("worker %d event %d", w, i)
				if _, err := b.Publish(ctx, e); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	// The control engine appends to the journal directly; its events are
	// streamed as well.
	wg.Go(func() {
		for range 10 {
			if err := j.Event(ctx, journal.EventEntry{Site: "valby-skole", Kind: "external_change", Severity: journal.SeverityInfo, Message: "m"}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	var got []int64
	var engine int
	for range 210 {
		e := recv(t, sub)
		got = append(got, e.ID)
		if e.Kind == "external_change" {
			engine++
		}
	}
	require.True(t, slices.IsSorted(got), "in id order")
	require.Len(t, slices.Compact(got), 210, "each once")
	require.Equal(t, 10, engine)
}

func TestKeepPersonalPerSite(t *testing.T) {
	b, _, _ := newBus(t, journal.Options{KeepPersonal: true, PersonalRetention: time.Hour},
		Options{KeepPersonal: func(site string) bool { return site == "valby-skole" }})
	ctx := t.Context()
	a, err := b.Publish(ctx, forced(t0))
	require.NoError(t, err)
	e := forced(t0)
	e.Site = "oerestad-skole"
	o, err := b.Publish(ctx, e)
	require.NoError(t, err)
	require.Equal(t, "Jens Jensen", a.CardHolder)
	require.Empty(t, o.CardHolder)
	got, err := b.Query(ctx, Filter{Personal: true})
	require.NoError(t, err)
	require.Equal(t, []string{"Jens Jensen", ""}, []string{got[0].CardHolder, got[1].CardHolder})
}

func TestQueryFilters(t *testing.T) {
	b, _, _ := newBus(t, journal.Options{}, Options{})
	ctx := t.Context()
	ev := func(min int, k Kind, s Severity) Event {
		return Event{Time: t0.Add(time.Duration(min) * time.Minute), Site: "valby-skole", Space: "gym", Kind: k, Severity: s, Message: "m"}
	}
	var ids []int64
	for _, e := range []Event{ev(0, DoorOpened, Info), ev(1, DoorHeldOpen, Warning), ev(2, DoorForced, Alarm), ev(3, Panic, Critical), ev(4, DoorClosed, Info)} {
		out, err := b.Publish(ctx, e)
		require.NoError(t, err)
		ids = append(ids, out.ID)
	}
	q := func(f Filter) []int64 {
		t.Helper()
		es, err := b.Query(ctx, f)
		require.NoError(t, err)
		var out []int64
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	require.Equal(t, ids[1:4], q(Filter{MinSeverity: Warning}))
	require.Equal(t, ids[2:4], q(Filter{Kinds: []Kind{DoorForced, Panic}}))
	require.Equal(t, ids[1:3], q(Filter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}))
	require.Equal(t, ids[3:], q(Filter{Limit: 2}))
	require.Equal(t, ids[2:4], q(Filter{SinceID: ids[1], First: 2}))
	require.Empty(t, q(Filter{Space: "hall"}))

	for _, tc := range []struct {
		f    Filter
		want string
	}{
		{Filter{Kinds: []Kind{"door_held"}}, `unknown event kind "door_held"`},
		{Filter{MinSeverity: "major"}, `unknown severity "major"`},
		{Filter{Limit: -1}, "cannot be negative"},
		{Filter{Limit: 1, First: 1}, "cannot be combined"},
		{Filter{Since: t0, Until: t0}, "is not after"},
	} {
		_, err := b.Query(ctx, tc.f)
		require.ErrorContains(t, err, tc.want)
		_, err = b.Subscribe(tc.f)
		require.ErrorContains(t, err, tc.want)
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	b, _, _ := newBus(t, journal.Options{}, Options{})
	sub, err := b.Subscribe(Filter{})
	require.NoError(t, err)
	b.Close()
	_, open := <-sub.C
	require.False(t, open)
	require.ErrorIs(t, sub.Err(), ErrClosed)
	sub.Cancel() // harmless
	require.ErrorIs(t, sub.Err(), ErrClosed)
	_, err = b.Publish(t.Context(), forced(t0))
	require.ErrorIs(t, err, ErrClosed)
	_, err = b.Subscribe(Filter{})
	require.ErrorIs(t, err, ErrClosed)
}

func TestParseKindsAndSeverity(t *testing.T) {
	ks, err := ParseKinds(" door_forced, panic ,")
	require.NoError(t, err)
	require.Equal(t, []Kind{DoorForced, Panic}, ks)
	_, err = ParseKinds("door_forced,dorr_held_open")
	require.ErrorContains(t, err, `unknown event kind "dorr_held_open"; kinds are door_opened, door_closed`)
	s, err := ParseSeverity("alarm")
	require.NoError(t, err)
	require.Equal(t, Alarm, s)
	_, err = ParseSeverity("Alarm")
	require.ErrorContains(t, err, "use info, warning, alarm or critical")
}

// TestPublishAllKeepsOrderAndRefusesABadBatch publishes a burst as one
// call: the events are stored with increasing ids and streamed in that
// order, and a batch with one invalid event stores nothing.
func TestPublishAllKeepsOrderAndRefusesABadBatch(t *testing.T) {
	b, _, db := newBus(t, journal.Options{}, Options{})
	sub, err := b.Subscribe(Filter{})
	require.NoError(t, err)
	defer sub.Cancel()
	var burst []Event
	for i := range 50 {
		e := forced(t0.Add(time.Duration(i) * time.Second))
		e.Subject = fmt.Sprintf("door%02d", i)
		burst = append(burst, e)
	}
	out, err := b.PublishAll(t.Context(), burst)
	require.NoError(t, err)
	require.Len(t, out, 50)
	for i := range out {
		require.Equal(t, burst[i].Subject, out[i].Subject)
		if i > 0 {
			require.Greater(t, out[i].ID, out[i-1].ID, "ids follow the slice")
		}
		got := recv(t, sub)
		require.Equal(t, out[i].ID, got.ID)
		require.Equal(t, burst[i].Subject, got.Subject)
	}

	bad := []Event{forced(t0), {Site: "valby-skole", Kind: "no_such_kind", Severity: Info, Message: "m"}}
	_, err = b.PublishAll(t.Context(), bad)
	require.ErrorIs(t, err, ErrInvalid)
	stored, err := Query(t.Context(), db, Filter{})
	require.NoError(t, err)
	require.Len(t, stored, 50, "nothing of the bad batch is stored")
}
