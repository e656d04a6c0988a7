package access_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/access"
	"github.com/bmsgw/bmsgw/internal/access/acssim"
	"github.com/bmsgw/bmsgw/internal/booking"
	"github.com/bmsgw/bmsgw/internal/events"
)

// the morning of the reference Thursday: every evening grant lies ahead.
var morning = at(0, 6, 0)

func push(t *testing.T, p *pusher, gs []access.Grant) access.Result {
	t.Helper()
	res, err := p.Push(context.Background(), gs)
	require.NoError(t, err)
	return res
}

// held returns the emulator's grants as spans, keyed by grant key.
func held(a *acs) map[string]span {
	out := map[string]span{}
	for _, g := range a.Grants() {
		out[g.Key] = span{g.Group, g.Door, g.From.In(cph).Format("01-02 15:04"), g.To.In(cph).Format("01-02 15:04"), access.Mode(g.Mode)}
	}
	return out
}

func want(gs []access.Grant) map[string]span {
	out := map[string]span{}
	for i, s := range spans(gs) {
		out[gs[i].Key] = s
	}
	return out
}

func methods(rs []acssim.Request) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Method + " " + strings.TrimPrefix(r.Path, "/api/grants")
	}
	return out
}

func TestPushCreatesUpdatesThroughRefAndRevokes(t *testing.T) {
	a := newACS(t, 1)
	p := newPusher(t, a, t.TempDir(), 1, func() time.Time { return morning })
	s := spec(1)
	s.Spaces[0].Doors = []string{"gym_entrance"}
	volley := bk("volley-1", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))

	gs := access.Grants(s, []booking.Booking{volley}, horizonFrom, horizonTo)
	res := push(t, p, gs)
	require.Equal(t, 1, res.Count(access.Create))
	require.Empty(t, res.Failures())
	require.Equal(t, "p-1", res.Ops[0].Ref)
	require.Equal(t, want(gs), held(a))

	// The booking moves: the same ACS grant is updated through its ref.
	moved := volley
	moved.Start, moved.End = at(0, 18, 0), at(0, 20, 0)
	gs = access.Grants(s, []booking.Booking{moved}, horizonFrom, horizonTo)
	res = push(t, p, gs)
	require.Equal(t, 1, res.Count(access.Update), res.String())
	require.Equal(t, "p-1", res.Ops[0].Ref)
	require.Equal(t, want(gs), held(a))
	require.Equal(t, "p-1", a.Grants()[0].ID)

	// Cancelled: revoked through the same ref.
	moved.Status = booking.Cancelled
	res = push(t, p, access.Grants(s, []booking.Booking{moved}, horizonFrom, horizonTo))
	require.Equal(t, 1, res.Count(access.Revoke))
	require.Equal(t, []booking.Key{volley.Key()}, res.Ops[0].Grant.Bookings, "a revoke names its booking for the journal")
	require.Empty(t, a.Grants())

	require.Equal(t, []string{"POST ", "PUT /p-1", "DELETE /p-1"}, methods(a.Requests()))
	require.Zero(t, a.Count(http.StatusConflict))
}

// The emulator allows one permission per group and door; the pusher must
// never make it refuse one.
func TestLimitOfOnePermissionPerGroupAndDoor(t *testing.T) {
	a := newACS(t, 1)
	p := newPusher(t, a, t.TempDir(), 1, func() time.Time { return morning })
	s := spec(1)
	early := bk("volley-a", "res-gym", "valby-volley", at(0, 17, 0), at(0, 18, 30))
	late := bk("volley-b", "res-gym", "valby-volley", at(0, 19, 30), at(0, 21, 0))

	t.Run("back-to-back bookings merge into one permission", func(t *testing.T) {
		adjacent := bk("volley-c", "res-gym", "valby-volley", at(1, 19, 0), at(1, 21, 0))
		adjacent2 := bk("volley-d", "res-gym", "valby-volley", at(1, 17, 0), at(1, 19, 0))
		gs := access.Grants(s, []booking.Booking{adjacent, adjacent2}, horizonFrom, horizonTo)
		require.Len(t, gs, 2, "one per door")
		push(t, p, gs)
		require.Equal(t, want(gs), held(a))
		push(t, p, nil)
		require.Empty(t, a.Grants())
	})

	t.Run("a booking moving onto another: revoke first, then update", func(t *testing.T) {
		gs := access.Grants(s, []booking.Booking{early, late}, horizonFrom, horizonTo)
		require.Len(t, gs, 4, "two separate windows at two doors")
		push(t, p, gs)
		moved := early
		moved.Start, moved.End = at(0, 19, 0), at(0, 20, 0) // now overlaps late's window
		gs = access.Grants(s, []booking.Booking{moved, late}, horizonFrom, horizonTo)
		require.Len(t, gs, 2)
		res := push(t, p, gs)
		require.Empty(t, res.Failures(), res.String())
		require.Equal(t, 2, res.Count(access.Revoke))
		require.Equal(t, 2, res.Count(access.Update), "the merged grant keeps the anchor's ref")
		require.Equal(t, want(gs), held(a))
	})

	t.Run("two grants swapping times: revoke and create anew", func(t *testing.T) {
		s0 := spec(0) // keep the two windows apart to swap them
		a1 := bk("volley-a", "res-gym", "valby-volley", at(2, 10, 0), at(2, 11, 0))
		b1 := bk("volley-b", "res-gym", "valby-volley", at(2, 12, 0), at(2, 13, 0))
		push(t, p, access.Grants(s0, []booking.Booking{a1, b1}, horizonFrom, horizonTo))
		a1.Start, a1.End, b1.Start, b1.End = b1.Start, b1.End, a1.Start, a1.End
		gs := access.Grants(s0, []booking.Booking{a1, b1}, horizonFrom, horizonTo)
		res := push(t, p, gs)
		require.Empty(t, res.Failures(), res.String())
		require.Equal(t, want(gs), held(a))
	})

	t.Run("grants over the limit are refused here, never sent", func(t *testing.T) {
		s0 := spec(0)
		s0.Spaces[0].Doors = []string{"gym_entrance"}
		x := bk("volley-x", "res-gym", "valby-volley", at(3, 10, 0), at(3, 12, 0))
		y := bk("volley-y", "res-gym", "valby-volley", at(3, 11, 0), at(3, 13, 0))
		gs := access.Grants(s0, []booking.Booking{x, y}, horizonFrom, horizonTo)
		require.Len(t, gs, 2)
		before := len(a.Requests())
		res := push(t, p, gs)
		require.Len(t, res.Failures(), 1)
		require.ErrorIs(t, res.Failures()[0].Err, access.ErrLimit)
		require.True(t, res.Failures()[0].Permanent)
		posts := 0
		for _, m := range methods(a.Requests()[before:]) {
			if strings.HasPrefix(m, "POST") {
				posts++
			}
		}
		require.Equal(t, 1, posts, "only the grant that fits was sent")
		require.Equal(t, want(gs[:1]), held(a))
	})

	require.Zero(t, a.Count(http.StatusConflict), "the ACS never had to refuse a grant")
	require.Zero(t, a.Count(http.StatusUnprocessableEntity), "no grant was created twice")
}

// Property: whatever the bookings do between pushes, the ACS ends up
// holding exactly the desired grants and never refuses one.
func TestRandomChangesKeepACSInLineWithinLimit(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	for _, limit := range []int{1, 2} {
		a := newACS(t, limit)
		p := newPusher(t, a, t.TempDir(), limit, func() time.Time { return morning })
		s := spec(limit)
		bs := randomBookings(r, 25)
		for round := range 25 {
			// Move, cancel, restore or add a few bookings.
			for range 1 + r.IntN(4) {
				i := r.IntN(len(bs))
				switch r.IntN(4) {
				case 0:
					d := time.Duration(r.IntN(9)-4) * 30 * time.Minute
					bs[i].Start, bs[i].End = bs[i].Start.Add(d), bs[i].End.Add(d)
				case 1:
					bs[i].Status = booking.Cancelled
				case 2:
					bs[i].Status = booking.Confirmed
				case 3:
					bs = append(bs, randomBookings(r, 1)[0])
					bs[len(bs)-1].ID = bs[len(bs)-1].ID + "-" + string(rune('a'+round%26)) + string(rune('a'+len(bs)%26))
				}
			}
			gs := access.Grants(s, bs, horizonFrom, horizonTo)
			res := push(t, p, gs)
			require.Empty(t, res.Failures(), "limit %d round %d: %s", limit, round, res)
			require.Equal(t, want(gs), held(a), "limit %d round %d", limit, round)
		}
		require.Zero(t, a.Count(http.StatusConflict), "limit %d", limit)
		require.Zero(t, a.Count(http.StatusUnprocessableEntity), "limit %d", limit)
		require.Zero(t, a.Count(http.StatusNotFound), "limit %d: every ref was right", limit)
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	volley := bk("volley-1", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))
	s := spec(1)
	s.Spaces[0].Doors = []string{"gym_entrance"}
	gs := access.Grants(s, []booking.Booking{volley}, horizonFrom, horizonTo)

	t.Run("5xx then success", func(t *testing.T) {
		a := newACS(t, 1)
		p := newPusher(t, a, t.TempDir(), 1, func() time.Time { return morning })
		a.FailNext(http.StatusServiceUnavailable, 1)
		a.FailNext(http.StatusBadGateway, 1)
		res := push(t, p, gs)
		require.Empty(t, res.Failures())
		require.Equal(t, 3, res.Ops[0].Attempts)
		require.Equal(t, http.StatusCreated, res.Ops[0].Status)
		require.Equal(t, want(gs), held(a))
		require.Contains(t, p.log.String(), "access request failed; retrying")
	})

	t.Run("a timeout then success", func(t *testing.T) {
		a := newACS(t, 1)
		p := newPusher(t, a, t.TempDir(), 1, func() time.Time { return morning },
			func(o *access.HTTPOptions) { o.Timeout = 200 * time.Millisecond })
		a.HangNext(1)
		res := push(t, p, gs)
		require.Empty(t, res.Failures(), res.String())
		require.Equal(t, 2, res.Ops[0].Attempts)
		require.Equal(t, want(gs), held(a))
	})

	t.Run("a create whose answer is lost is not made twice", func(t *testing.T) {
		a := newACS(t, 1)
		p := newPusher(t, a, t.TempDir(), 1, func() time.Time { return morning },
			func(o *access.HTTPOptions) { o.Timeout = 200 * time.Millisecond })
		a.LoseNextAnswer(1)
		res := push(t, p, gs)
		require.Empty(t, res.Failures(), res.String())
		require.Equal(t, 2, res.Ops[0].Attempts)
		require.Equal(t, "p-1", res.Ops[0].Ref, "the retry got the first create's answer")
		require.Len(t, a.Grants(), 1)
		require.Zero(t, a.Count(http.StatusUnprocessableEntity))
		reqs := a.Requests()
		require.NotEmpty(t, reqs[0].Header.Get("Idempotency-Key"))
		require.Equal(t, reqs[0].Header.Get("Idempotency-Key"), reqs[1].Header.Get("Idempotency-Key"))
	})

	t.Run("still failing after the attempts: reported, then made on the next push", func(t *testing.T) {
		a := newACS(t, 1)
		p := newPusher(t, a, t.TempDir(), 1, func() time.Time { return morning },
			func(o *access.HTTPOptions) { o.Attempts = 3 })
		a.FailNext(http.StatusInternalServerError, 3)
		res := push(t, p, gs)
		require.Len(t, res.Failures(), 1)
		f := res.Failures()[0]
		require.False(t, f.Permanent)
		require.Equal(t, 3, f.Attempts)
		require.ErrorContains(t, f.Err, "gave up after 3 attempts")
		require.Empty(t, a.Grants())

		res = push(t, p, gs)
		require.Equal(t, 1, res.Count(access.Create))
		require.Equal(t, want(gs), held(a))
	})

	t.Run("connection refused is transient", func(t *testing.T) {
		a := newACS(t, 1)
		dead := &acs{Server: a.Server, URL: "http://127.0.0.1:1/api/grants"}
		p := newPusher(t, dead, t.TempDir(), 1, func() time.Time { return morning },
			func(o *access.HTTPOptions) { o.Attempts = 2 })
		res := push(t, p, gs)
		require.Len(t, res.Failures(), 1)
		f := res.Failures()[0]
		require.False(t, f.Permanent)
		require.Equal(t, 2, f.Attempts)
		require.Zero(t, f.Status)
		require.NotContains(t, f.Err.Error(), token)
	})
}

func TestPermanentFailuresAreReportedPerGrant(t *testing.T) {
	a := newACS(t, 1)
	p := newPusher(t, a, t.TempDir(), 1, func() time.Time { return morning })
	volley := bk("volley-1", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))
	gs := access.Grants(spec(1), []booking.Booking{volley}, horizonFrom, horizonTo)
	require.Len(t, gs, 2)
	a.FailNext(http.StatusUnprocessableEntity, 1)

	res := push(t, p, gs)
	require.Equal(t, 1, res.Count(access.Create), "the other grant went through")
	fails := res.Failures()
	require.Len(t, fails, 1)
	f := fails[0]
	require.True(t, f.Permanent)
	require.Equal(t, 1, f.Attempts, "a 4xx is not retried")
	require.Equal(t, http.StatusUnprocessableEntity, f.Status)
	var se *access.StatusError
	require.True(t, errors.As(f.Err, &se))
	require.Contains(t, se.Body, "injected failure")
	require.Equal(t, gs[0].Key, f.Grant.Key)

	evs := res.Events("valby", morning)
	require.Len(t, evs, 1)
	e := evs[0]
	require.Equal(t, events.AccessPushFailed, e.Kind)
	require.Equal(t, events.Warning, e.Severity)
	require.Equal(t, "valby", e.Site)
	require.Equal(t, "acs", e.Subject)
	require.Equal(t, "leisure:volley-1", e.Booking)
	require.Equal(t, "valby-volley", e.Organiser)
	require.Contains(t, e.Message, "create G1041 at gym_entrance")
	require.Contains(t, e.Message, "422")
	require.Contains(t, res.String(), "1 created, 0 updated, 0 revoked, 0 expired, 1 failed")

	t.Run("a wrong token is a permanent failure too", func(t *testing.T) {
		p := newPusher(t, a, t.TempDir(), 1, func() time.Time { return morning },
			func(o *access.HTTPOptions) { o.Headers = map[string]string{"Authorization": "Bearer wrong"} })
		res := push(t, p, gs)
		require.Len(t, res.Failures(), 2)
		require.Equal(t, http.StatusUnauthorized, res.Failures()[0].Status)
	})
}

func TestRestartMakesNoCallsWhenNothingChanged(t *testing.T) {
	a := newACS(t, 1)
	dir := t.TempDir()
	now := func() time.Time { return morning }
	bs := []booking.Booking{
		bk("volley-1", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0)),
		bk("chess-1", "res-room12", "chess", at(0, 14, 0), at(0, 16, 0)),
	}
	gs := access.Grants(spec(1), bs, horizonFrom, horizonTo)
	first := newPusher(t, a, dir, 1, now)
	push(t, first, gs)
	require.NoError(t, first.Close())
	n := len(a.Requests())
	require.Equal(t, len(gs), n)

	info, err := os.Stat(filepath.Join(dir, "access-acs.json"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	second := newPusher(t, a, dir, 1, now)
	res := push(t, second, gs)
	require.Equal(t, len(gs), res.Unchanged)
	require.Empty(t, res.Ops)
	require.False(t, res.Changed())
	require.Len(t, a.Requests(), n, "no request after a restart")

	// After the restart a change still goes through the stored ref.
	bs[0].Start = at(0, 18, 30)
	res = push(t, second, access.Grants(spec(1), bs, horizonFrom, horizonTo))
	require.Equal(t, 2, res.Count(access.Update), res.String())
	require.Zero(t, res.Count(access.Create))
	require.Zero(t, a.Count(http.StatusUnprocessableEntity))

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left")
}

func TestRefsUnknownToTheACS(t *testing.T) {
	a := newACS(t, 1)
	p := newPusher(t, a, t.TempDir(), 1, func() time.Time { return morning })
	s := spec(1)
	s.Spaces[0].Doors = []string{"gym_entrance"}
	volley := bk("volley-1", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))
	push(t, p, access.Grants(s, []booking.Booking{volley}, horizonFrom, horizonTo))

	// Someone removed the grant in the ACS; the booking moves: the PUT
	// finds nothing, so it is created again.
	a.Remove("p-1")
	volley.Start = at(0, 18, 0)
	gs := access.Grants(s, []booking.Booking{volley}, horizonFrom, horizonTo)
	res := push(t, p, gs)
	require.Empty(t, res.Failures(), res.String())
	require.Equal(t, "p-2", res.Ops[0].Ref)
	require.Equal(t, want(gs), held(a))

	// Removed by hand again, then cancelled: the DELETE's 404 means done.
	a.Remove("p-2")
	volley.Status = booking.Cancelled
	res = push(t, p, access.Grants(s, []booking.Booking{volley}, horizonFrom, horizonTo))
	require.Empty(t, res.Failures())
	require.Equal(t, 1, res.Count(access.Revoke))
	require.Equal(t, http.StatusNotFound, res.Ops[0].Status)
	res = push(t, p, nil)
	require.Empty(t, res.Ops, "forgotten")
}

func TestEndedGrantsAreForgottenWithoutACall(t *testing.T) {
	a := newACS(t, 1)
	c := &clock{now: morning}
	p := newPusher(t, a, t.TempDir(), 1, c.Now)
	s := spec(1)
	s.Spaces[0].Doors = []string{"gym_entrance"}
	volley := bk("volley-1", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))
	gs := access.Grants(s, []booking.Booking{volley}, horizonFrom, horizonTo)
	push(t, p, gs)
	n := len(a.Requests())

	c.Set(at(0, 21, 15)) // the grant's end
	res := push(t, p, access.Grants(s, []booking.Booking{volley}, c.Now(), horizonTo))
	require.Equal(t, 1, res.Count(access.Expire))
	require.Equal(t, "p-1", res.Ops[0].Ref)
	require.False(t, res.Changed())
	require.Len(t, a.Requests(), n, "the ACS lets it lapse by itself")
	require.Empty(t, push(t, p, gs).Ops, "an ended grant is not pushed again")
}

// Only pseudonymous group ids, door ids, times, modes and keys go out;
// no organiser (when mapped), booking id, resource or secret does, in a
// request body, the log or the state file.
func TestNoPersonalDataOrSecretLeaves(t *testing.T) {
	a := newACS(t, 0)
	dir := t.TempDir()
	c := &clock{now: morning}
	p := newPusher(t, a, dir, 0, c.Now)
	personal := bk("jens.hansen@example.org/20261126T180000Z", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))
	gs := access.Grants(spec(0), []booking.Booking{personal}, horizonFrom, horizonTo)
	push(t, p, gs)
	personal.Start = at(0, 18, 0)
	push(t, p, access.Grants(spec(0), []booking.Booking{personal}, horizonFrom, horizonTo))
	push(t, p, nil)

	reqs := a.Requests()
	require.Len(t, reqs, 6, "create, update and revoke at two doors")
	forbidden := []string{"jens", "example.org", "valby-volley", "res-gym", "leisure", "s3cr3t", "organiser"}
	for _, r := range reqs {
		require.Equal(t, token, r.Header.Get("Authorization"), "the secret goes in the header only")
		for _, f := range forbidden {
			require.NotContains(t, string(r.Body), f, "%s %s", r.Method, r.Path)
			require.NotContains(t, r.Path, f)
		}
		if r.Method == http.MethodDelete {
			require.Empty(t, r.Body)
			continue
		}
		var fields map[string]string
		require.NoError(t, json.Unmarshal(r.Body, &fields))
		require.ElementsMatch(t, []string{"group", "door", "from", "to", "mode", "key"}, keysOf(fields))
		require.Equal(t, "G1041", fields["group"])
		_, err := time.Parse(time.RFC3339, fields["from"])
		require.NoError(t, err)
	}
	require.NotContains(t, p.log.String(), "s3cr3t")
	require.NotContains(t, p.log.String(), "jens")
	state, err := os.ReadFile(filepath.Join(dir, "access-acs.json"))
	require.NoError(t, err)
	require.NotContains(t, string(state), "s3cr3t")
	require.NotContains(t, access.HTTPOptions{URL: "https://user:pw@acs.example/api?token=abc", Headers: map[string]string{"Authorization": token}}.LogValue().String(), "s3cr3t")
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestBadOptionsAndState(t *testing.T) {
	a := newACS(t, 1)
	_, err := access.NewHTTP(access.HTTPOptions{ID: "../x", URL: "ftp://acs", StateDir: "",
		Headers: map[string]string{"Authorization": "a\nb"}, Timeout: -1}, nil)
	require.Error(t, err)
	for _, want := range []string{`id "../x"`, "must be http:// or https://", "no state directory", `header "Authorization" has a line break`, "must not be negative"} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), "a\nb", "the header value is secret")

	_, err = access.NewHTTP(access.HTTPOptions{ID: "acs", URL: a.URL + "?token=abc", StateDir: t.TempDir()}, nil)
	require.ErrorContains(t, err, "must not have a query")
	require.NotContains(t, err.Error(), "abc")

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "access-acs.json"), []byte("{not json"), 0o600))
	_, err = access.NewHTTP(access.HTTPOptions{ID: "acs", URL: a.URL, StateDir: dir}, nil)
	require.ErrorContains(t, err, "cannot know which grants the ACS holds")

	t.Run("another endpoint forgets the old references", func(t *testing.T) {
		dir := t.TempDir()
		gs := access.Grants(spec(1), []booking.Booking{bk("v", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))}, horizonFrom, horizonTo)
		push(t, newPusher(t, a, dir, 1, func() time.Time { return morning }), gs)
		b := newACS(t, 1)
		res := push(t, newPusher(t, b, dir, 1, func() time.Time { return morning }), gs)
		require.Equal(t, 2, res.Count(access.Create))
		require.Equal(t, want(gs), held(b))
	})

	t.Run("malformed and repeated grants are reported, not sent", func(t *testing.T) {
		p := newPusher(t, a, t.TempDir(), 1, func() time.Time { return morning })
		g := access.Grant{Key: "g-1", Group: "G1", Door: "d", From: at(0, 19, 0), To: at(0, 20, 0), Mode: access.ModeCard}
		bad := g
		bad.Key, bad.Mode = "g-2", "wave"
		n := len(a.Requests())
		res := push(t, p, []access.Grant{g, g, bad})
		require.Len(t, res.Failures(), 2)
		for _, f := range res.Failures() {
			require.ErrorIs(t, f.Err, access.ErrInvalidGrant)
		}
		require.Len(t, a.Requests(), n+1)
	})

	t.Run("a create answered without a reference", func(t *testing.T) {
		srv := newRawServer(t, http.StatusCreated, `{"ok":true}`)
		p := newPusher(t, &acs{URL: srv}, t.TempDir(), 1, func() time.Time { return morning })
		g := access.Grant{Key: "g-1", Group: "G1", Door: "d", From: at(0, 19, 0), To: at(0, 20, 0), Mode: access.ModeCard}
		res := push(t, p, []access.Grant{g})
		require.ErrorIs(t, res.Failures()[0].Err, access.ErrNoRef)
	})

	t.Run("a redirect is not followed", func(t *testing.T) {
		srv := newRawServer(t, http.StatusFound, "")
		p := newPusher(t, &acs{URL: srv}, t.TempDir(), 1, func() time.Time { return morning })
		g := access.Grant{Key: "g-1", Group: "G1", Door: "d", From: at(0, 19, 0), To: at(0, 20, 0), Mode: access.ModeCard}
		res := push(t, p, []access.Grant{g})
		require.Equal(t, http.StatusFound, res.Failures()[0].Status)
		require.True(t, res.Failures()[0].Permanent)
	})
}

func TestCancelledContextStopsThePush(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The ACS answers 503, and the gateway is told to stop meanwhile:
	// instead of waiting an hour to retry, the push ends.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancel()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	p := newPusher(t, &acs{URL: srv.URL}, t.TempDir(), 1, func() time.Time { return morning },
		func(o *access.HTTPOptions) { o.RetryMin, o.RetryMax = time.Hour, time.Hour })
	gs := access.Grants(spec(1), []booking.Booking{bk("v", "res-gym", "valby-volley", at(0, 19, 0), at(0, 21, 0))}, horizonFrom, horizonTo)
	_, err := p.Push(ctx, gs)
	require.ErrorIs(t, err, context.Canceled)
}

// newRawServer answers every request with status and body.
func newRawServer(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status == http.StatusFound {
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/api/grants"
}
