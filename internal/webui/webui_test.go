package webui_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/events"
	"github.com/bmsgw/bmsgw/internal/httpapi"
	"github.com/bmsgw/bmsgw/internal/journal"
	"github.com/bmsgw/bmsgw/internal/webui"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write docs/screenshots/*.png from the headless browser")

// Screenshots kept in docs/ and linked from docs/webui.md.
var (
	weekShot   = filepath.Join("..", "..", "docs", "screenshots", "webui-week.png")
	energyShot = filepath.Join("..", "..", "docs", "screenshots", "webui-energy.png")
	statusShot = filepath.Join("..", "..", "docs", "screenshots", "webui-status-phone.png")
)

// gateway is the page and a real httpapi.Server on one listener on
// 127.0.0.1, as the daemon serves them, with a token per role.
type gateway struct {
	b   *refBackend
	url string
	tok map[httpapi.Role]string
}

var holderOf = map[httpapi.Role]string{httpapi.RoleViewer: "energy-office", httpapi.RoleOperator: "ops-townhall"}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	g := &gateway{b: newRefBackend(t), tok: map[httpapi.Role]string{}}
	var entries []httpapi.TokenEntry
	for role, name := range holderOf {
		tok, hash, err := httpapi.GenerateToken()
		require.NoError(t, err)
		g.tok[role] = tok
		entries = append(entries, httpapi.TokenEntry{Name: name, Role: role.String(), TokenSHA256: hash})
	}
	tokens, err := httpapi.NewTokens(entries)
	require.NoError(t, err)
	api, err := httpapi.New(httpapi.Options{Backend: g.b, Tokens: tokens, Now: func() time.Time { return testNow }})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/api/", api.Handler())
	mux.Handle("/", webui.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close() // event streams do not end by themselves
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	g.url = "http://" + ln.Addr().String()
	return g
}

// getJSON fetches an API path with a role's token, as a tool would.
func (g *gateway) getJSON(t *testing.T, role httpapi.Role, path string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, g.url+path, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+g.tok[role])
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, body)
	require.NoError(t, json.Unmarshal(body, v))
}

// chromium finds Debian's chromium; the test command installs it
// (.ci/install-test-deps), so a missing one is a failure, not a skip.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: the web page is tested in a real headless browser; " +
		"run .ci/install-test-deps (or apt-get install chromium)")
	return ""
}

// browser starts one headless chromium for a test; tabs are opened on it.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // the CI machine runs tests as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("lang", "en-GB"),
		chromedp.WindowSize(1360, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// Start the browser now, so that a broken install fails here.
	require.NoError(t, chromedp.Do(bctx), "start chromium")
	return bctx
}

// tab opens a new tab, signs in with the role's token at the hash
// route and waits until the view has rendered.
func (g *gateway) tab(t *testing.T, bctx context.Context, role httpapi.Role, hash string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	ctx, cancelT := context.WithTimeout(ctx, 40*time.Second)
	t.Cleanup(cancelT)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(g.url+"/"+hash),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), g.tok[role]),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#nav")),
	))
	waitReady(t, ctx)
	return ctx
}

// waitReady waits until the page has rendered its view.
func waitReady(t *testing.T, ctx context.Context) {
	t.Helper()
	waitJS(t, ctx, `document.body.dataset.ready === "true"`)
}

// waitJS waits until a JavaScript expression is true in the page.
func waitJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond)))
	if err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("error").textContent + document.getElementById("override-error").textContent`))
		require.NoError(t, err, "waiting for %s (page error: %q)", expr, msg)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, "%s", expr)
	return v
}

// goTo changes the hash route and waits for the new view.
func goTo(t *testing.T, ctx context.Context, hash, ready string) {
	t.Helper()
	// Marked pending in the same task as the change, so that the wait
	// below cannot see the previous view's ready mark.
	h := strconv.Quote(hash)
	_, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { if (location.hash === `+h+`) return "same";
		document.body.dataset.ready = "pending"; location.hash = `+h+`; return "changed"; })()`))
	require.NoError(t, err)
	waitJS(t, ctx, ready)
	waitReady(t, ctx)
}

func screenshot(t *testing.T, ctx context.Context, sel, path string) {
	t.Helper()
	if !*updateScreenshots {
		require.FileExists(t, path, "run go test ./internal/webui -update-screenshots to write it")
		return
	}
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(sel)))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, png, 0o644))
}

// TestWebPage drives the page in a real headless chromium against a real
// API on the reference site: the week of 2026-11-23 shows Thursday's
// volleyball booking in the gym row; the energy table holds the API's
// numbers; the Danish switch changes the labels; an operator's override
// click reaches the journal and a viewer has no override button; a
// published event shows up live with its severity's colour.
func TestWebPage(t *testing.T) {
	g := newGateway(t)
	bctx := browser(t)
	op := g.tab(t, bctx, httpapi.RoleOperator, "#view=week&site=valby-skole&week=2026-W48")

	t.Run("week view", func(t *testing.T) {
		require.Equal(t, "2026-W48", eval[string](t, op, `document.getElementById("week").value`))
		volley := `document.querySelector('#week-grid .bar.booking[data-space="gym"][data-organiser="valby-volley"]')`
		waitJS(t, op, volley+` !== null`)
		got := eval[map[string]string](t, op, `(() => { const b = `+volley+`;
			return {day: b.dataset.day, start: b.dataset.start, end: b.dataset.end, row: b.closest(".row").dataset.space,
				visible: String(b.getBoundingClientRect().width > 0)}; })()`)
		require.Equal(t, map[string]string{"day": "3", "start": "19:00", "end": "21:00", "row": "gym", "visible": "true"}, got,
			"Thursday 19:00-21:00 in the gym row")
		// The gym is occupied for the booking, and the air handler's
		// comfort period beneath begins an hour before (the hall's
		// pre-heat lead) and ends 15 minutes after (its lag).
		win := eval[[]string](t, op, `[...document.querySelectorAll('#week-grid .bar.window[data-space="gym"][data-day="3"]')].map(b => b.dataset.start + "-" + b.dataset.end)`)
		require.Contains(t, win, "19:00-21:00")
		comfort := eval[[]string](t, op, `[...document.querySelectorAll('#week-grid .bar.comfort[data-point="gym_ahu.mode"][data-day="3"]')].map(b => b.dataset.start + "-" + b.dataset.end)`)
		require.Contains(t, comfort, "18:00-21:15")
		// One row per space, in the mapping's order.
		var spaces []httpapi.SpaceInfo
		g.getJSON(t, httpapi.RoleViewer, "/api/sites/valby-skole/spaces", &spaces)
		var ids []string
		for _, s := range spaces {
			ids = append(ids, s.ID)
		}
		require.Equal(t, ids, eval[[]string](t, op, `[...document.querySelectorAll("#week-grid .row.space")].map(r => r.dataset.space)`))
		// The school's timetable feed is failing (the fixture's): the
		// week says the plan may miss its latest changes.
		waitJS(t, op, `!document.getElementById("feeds-note").hidden`)
		note := eval[string](t, op, `document.getElementById("feeds-note").textContent`)
		require.Contains(t, note, "Booking feed failing, the plan may miss its latest changes:")
		require.Contains(t, note, "timetable: failing (7 in a row), planning from the last good feed of ")
		require.NotContains(t, note, "leisure", "only the failing feed")
		screenshot(t, op, "#view-week", weekShot)
	})

	t.Run("energy report", func(t *testing.T) {
		goTo(t, op, "#view=energy&site=valby-skole&week=2026-W48", `document.querySelector("#energy-table tbody tr[data-space]") !== null`)
		var rep httpapi.EnergyReport
		g.getJSON(t, httpapi.RoleViewer, "/api/reports/energy?site=valby-skole&week=2026-W48", &rep)
		require.NotEmpty(t, rep.Spaces)
		cells := eval[[]map[string]string](t, op, `[...document.querySelectorAll("#energy-table tbody tr, #energy-table tfoot tr")].map(tr =>
			Object.fromEntries([...tr.children].flatMap(td => [[td.dataset.key, td.dataset.value ?? td.textContent], [td.dataset.key + ".text", td.textContent]])))`)
		require.Len(t, cells, len(rep.Spaces)+1, "a row per space and the total")
		check := func(row map[string]string, key string, want float64, digits int) {
			t.Helper()
			got, err := strconv.ParseFloat(row[key], 64)
			require.NoError(t, err, "%s: %q", key, row[key])
			require.Equal(t, want, got, "%s of %s: the API's number", key, row["space"])
			text, err := strconv.ParseFloat(strings.ReplaceAll(row[key+".text"], ",", ""), 64)
			require.NoError(t, err, "%s shown as %q", key, row[key+".text"])
			require.InDelta(t, want, text, 0.5*math.Pow10(-digits)+1e-9, "%s of %s as shown: %q", key, row["space"], row[key+".text"])
		}
		for i, s := range rep.Spaces {
			row := cells[i]
			require.Equal(t, s.Space, row["space"])
			check(row, "comfort_hours", s.ComfortHours, 2)
			check(row, "baseline_hours", s.BaselineHours, 2)
			check(row, "saved_hours", s.SavedHours, 2)
			check(row, "heating_kw", s.HeatingKW, 1)
			check(row, "lighting_kw", s.LightingKW, 1)
			check(row, "saved_heating_kwh", s.SavedHeatingKWh, 1)
			check(row, "saved_lighting_kwh", s.SavedLightingKWh, 1)
		}
		total := cells[len(rep.Spaces)]
		check(total, "comfort_hours", rep.Total.ComfortHours, 2)
		check(total, "baseline_hours", rep.Total.BaselineHours, 2)
		check(total, "saved_heating_kwh", rep.Total.SavedHeatingKWh, 1)
		check(total, "saved_lighting_kwh", rep.Total.SavedLightingKWh, 1)
		// The chart has a comfort and a baseline bar per space.
		require.Equal(t, 2*len(rep.Spaces), eval[int](t, op, `document.querySelectorAll("#energy-chart rect[data-space]").length`))
		// The CSV export holds the same numbers.
		csv := eval[string](t, op, `window.bmsgw.csv("energy-table")`)
		lines := strings.Split(strings.TrimSpace(csv), "\r\n")
		require.Len(t, lines, len(rep.Spaces)+2)
		first := strings.Split(lines[1], ",")
		require.Equal(t, rep.Spaces[0].Space, first[0])
		require.Equal(t, strconv.FormatFloat(rep.Spaces[0].ComfortHours, 'f', -1, 64), first[2])
		screenshot(t, op, "#view-energy", energyShot)
	})

	t.Run("no-show report", func(t *testing.T) {
		// The chess club did not come on Thursday (DOMAIN.md section 5).
		_, err := g.b.bus.Publish(t.Context(), events.Event{Time: thursday.Add(19*time.Hour + 20*time.Minute), Site: "valby-skole", Space: "room12",
			Kind: events.NoShow, Severity: events.Info, Booking: "leisure:chess-room12@booking.kk.dk/20261126T180000Z", Organiser: "valby-skak",
			Message: "no-show: nobody came to the chess club's booking"})
		require.NoError(t, err)
		goTo(t, op, "#view=noshows&site=valby-skole", `document.querySelector("#noshows-table tbody tr[data-organiser]") !== null`)
		var rep httpapi.NoShowReport
		g.getJSON(t, httpapi.RoleViewer, "/api/reports/noshows?site=valby-skole", &rep)
		var want [][]string
		for _, o := range rep.Organisers {
			want = append(want, []string{o.Organiser, strconv.Itoa(o.Bookings), strconv.Itoa(o.NoShows), strconv.Itoa(o.Late), strconv.FormatFloat(o.Rate, 'f', -1, 64)})
		}
		require.NotEmpty(t, want)
		got := eval[[][]string](t, op, `[...document.querySelectorAll("#noshows-table tbody tr")].map(tr => [...tr.children].map(td => td.dataset.value ?? td.textContent))`)
		require.Equal(t, want, got, "the API's rows, in its order")
		chess := eval[string](t, op, `document.querySelector('#noshows-table tr[data-organiser="valby-skak"] [data-key="no_shows"]').textContent`)
		require.Equal(t, "1", chess)
	})

	t.Run("danish", func(t *testing.T) {
		goTo(t, op, "#view=energy&site=valby-skole&week=2026-W48", `document.querySelector("#energy-table tbody tr[data-space]") !== null`)
		require.NoError(t, chromedp.Do(op, chromedp.Click(chromedp.CSS(`#lang button[data-lang="da"]`))))
		waitJS(t, op, `document.documentElement.lang === "da"`)
		waitReady(t, op) // the view renders again in Danish
		got := eval[[]string](t, op, `[document.querySelector('#nav a[data-view="energy"]').textContent,
			document.querySelector('#energy-table th[data-key="comfort_hours"]').textContent,
			document.querySelector('#energy-table tfoot [data-key="space"]').textContent,
			document.querySelector('#energy-table tbody [data-key="baseline_hours"]').textContent]`)
		require.Equal(t, "Energi", got[0])
		require.Equal(t, "Komfort t", got[1])
		require.Equal(t, "I alt", got[2])
		require.Contains(t, got[3], ",", "Danish decimal comma")
		require.NoError(t, chromedp.Do(op, chromedp.Click(chromedp.CSS(`#lang button[data-lang="en"]`))))
		waitJS(t, op, `document.querySelector('#nav a[data-view="energy"]').textContent === "Energy"`)
		waitReady(t, op)
	})

	t.Run("status and override", func(t *testing.T) {
		row := `#points-table tr[data-point="gym_ahu.mode"]`
		goTo(t, op, "#view=status&site=valby-skole", `document.querySelector('`+row+` button.override') !== null`)
		tiles := eval[map[string]string](t, op, `Object.fromEntries([...document.querySelectorAll(".tile[data-door], .tile[data-area]")].map(e => [e.dataset.door || e.dataset.area, e.className]))`)
		require.Equal(t, "tile ok", tiles["gym_entrance"], "closed and locked")
		require.NotEqual(t, "tile ok", tiles["gym_side"], "held open by a bin")
		require.Equal(t, "tile unknown", tiles["pitch_gate"], "never read")
		require.Equal(t, "tile open", tiles["gym_wing"], "disarmed")
		require.Equal(t, "tile ok", tiles["wing_b"], "armed")
		require.Contains(t, eval[string](t, op, `document.querySelector('#points-table tr[data-point="pitch_floodlight_enable"] [data-key="actual"]').textContent`),
			"device down: written when it is back", "a point waiting for its device says so")
		feeds := eval[map[string][]string](t, op, `Object.fromEntries([...document.querySelectorAll("#feeds-table tr[data-feed]")].map(e =>
			[e.dataset.feed, [e.className, e.querySelector('[data-key="state"]').textContent, e.querySelector('[data-key="bookings"]').textContent,
				e.querySelector('[data-key="last_error"]').textContent]]))`)
		require.Equal(t, []string{"ok", "ok", "412", ""}, feeds["leisure"])
		require.Equal(t, "bad", feeds["timetable"][0])
		require.Contains(t, feeds["timetable"][1], "failing (7 in a row), planning from the last good feed of ", "the failing feed and what the plans use")
		require.Equal(t, "1,480", feeds["timetable"][2])
		require.Equal(t, "timetable.csv: HTTP 500", feeds["timetable"][3])

		why := "water leak in the gym, AHU off until the plumber leaves"
		require.NoError(t, chromedp.Do(op,
			chromedp.Click(chromedp.CSS(row+` button.override`)),
			chromedp.WaitVisible(chromedp.CSS("#override-form")),
			chromedp.SetValue(chromedp.CSS("#override-value"), "label:off"),
			chromedp.SendKeys(chromedp.CSS("#override-why"), why),
			chromedp.Click(chromedp.CSS("#override-submit")),
		))
		waitJS(t, op, `document.body.dataset.lastAction === "override:gym_ahu.mode" && document.querySelector('`+row+`.overridden button.clear') !== null`)
		waitReady(t, op)
		entries, err := g.b.journal.Query(t.Context(), journal.Filter{Site: "valby-skole", Point: "gym_ahu.mode", Kinds: []journal.Kind{journal.KindOverride}})
		require.NoError(t, err)
		require.Len(t, entries, 1)
		o := entries[0].Override
		require.Equal(t, journal.OverrideSet, o.Action)
		require.Equal(t, "ops-townhall", o.Who, "journalled under the operator's token holder")
		require.Equal(t, why, o.Why)
		require.Equal(t, 0.0, o.Value.Num, "off")
		require.True(t, o.Until.After(testNow.Add(time.Hour)), "until defaults to two hours after the gateway's now: %s", o.Until)
		require.Contains(t, eval[string](t, op, `document.querySelector('`+row+` [data-key="override"]').textContent`), "ops-townhall")

		require.NoError(t, chromedp.Do(op, chromedp.Click(chromedp.CSS(row+` button.clear`))))
		waitJS(t, op, `document.body.dataset.lastAction === "clear:gym_ahu.mode"`)
		waitReady(t, op)
		entries, err = g.b.journal.Query(t.Context(), journal.Filter{Site: "valby-skole", Point: "gym_ahu.mode", Kinds: []journal.Kind{journal.KindOverride}})
		require.NoError(t, err)
		require.Len(t, entries, 2)
		require.Equal(t, journal.OverrideClear, entries[1].Override.Action)
	})

	t.Run("viewer has no override button", func(t *testing.T) {
		vw := g.tab(t, bctx, httpapi.RoleViewer, "#view=status&site=valby-skole")
		waitJS(t, vw, `document.querySelector('#points-table tr[data-point="gym_ahu.mode"]') !== null`)
		require.Equal(t, "viewer", eval[string](t, vw, `document.body.dataset.role`))
		require.Equal(t, 0, eval[int](t, vw, `document.querySelectorAll("button.override, button.clear").length`))
		require.Equal(t, 0, eval[int](t, vw, `document.querySelectorAll('#points-table th[data-key="actions"]').length`))
	})

	t.Run("live events", func(t *testing.T) {
		first, err := g.b.bus.Publish(t.Context(), events.Event{Time: thursday.Add(21*time.Hour + 20*time.Minute), Site: "valby-skole", Space: "gym",
			Kind: events.DoorHeldOpen, Severity: events.Warning, Subject: "gym_side", Message: "Gym side door held open"})
		require.NoError(t, err)
		goTo(t, op, "#view=events&site=valby-skole", fmt.Sprintf(`document.querySelector('#events-table tr[data-id="%d"]') !== null`, first.ID))
		waitJS(t, op, `document.getElementById("events-live").dataset.state === "on"`)
		forced, err := g.b.bus.Publish(t.Context(), events.Event{Time: testNow, Site: "valby-skole", Space: "gym",
			Kind: events.DoorForced, Severity: events.Alarm, Subject: "gym_entrance", Message: "Gym entrance forced open"})
		require.NoError(t, err)
		sel := fmt.Sprintf(`#events-table tr[data-id="%d"]`, forced.ID)
		waitJS(t, op, `document.querySelector('`+sel+`') !== null`)
		got := eval[[]string](t, op, `(() => { const r = document.querySelector('`+sel+`');
			return [r.className, r.querySelector('[data-key="message"]').textContent, getComputedStyle(r).backgroundColor,
				getComputedStyle(document.querySelector('#events-table tr[data-id="`+strconv.FormatInt(first.ID, 10)+`"]')).backgroundColor,
				document.querySelector("#events-table tbody tr").dataset.id]; })()`)
		require.Equal(t, "sev-alarm", got[0])
		require.Equal(t, "Gym entrance forced open", got[1])
		require.NotEqual(t, got[2], got[3], "alarm and warning have their own colours")
		require.Equal(t, strconv.FormatInt(forced.ID, 10), got[4], "newest first")
	})

	t.Run("phone", func(t *testing.T) {
		require.NoError(t, chromedp.Do(op, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2))))
		goTo(t, op, "#view=status&site=valby-skole", `document.querySelector('#points-table tr[data-point]') !== null`)
		// The page itself does not scroll sideways; wide tables and the
		// timeline scroll inside their boxes.
		require.LessOrEqual(t, eval[int](t, op, `document.documentElement.scrollWidth`), 390)
		screenshot(t, op, "main", statusShot)
		goTo(t, op, "#view=week&site=valby-skole&week=2026-W48", `document.querySelector('#week-grid .bar.booking') !== null`)
		require.LessOrEqual(t, eval[int](t, op, `document.documentElement.scrollWidth`), 390)
	})
}

// TestHandler: the page's files with their security headers; nothing
// else, and no other method.
func TestHandler(t *testing.T) {
	g := newGateway(t)
	get := func(method, path string) (*http.Response, string) {
		req, err := http.NewRequestWithContext(t.Context(), method, g.url+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, string(b)
	}
	resp, body := get(http.MethodGet, "/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, `<script src="app.js" defer></script>`)
	require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'")
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	for path, ctype := range map[string]string{"/index.html": "text/html", "/app.js": "text/javascript", "/i18n.js": "text/javascript", "/app.css": "text/css"} {
		resp, _ := get(http.MethodGet, path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, resp.Header.Get("Content-Type"), ctype, path)
	}
	for _, path := range []string{"/nope", "/static/app.js", "/../go.mod", "/api-typo"} {
		resp, _ := get(http.MethodGet, path)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, path)
	}
	resp, _ = get(http.MethodPost, "/")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	// The API still answers its own 404 under the same listener.
	resp, body = get(http.MethodGet, "/api/nope")
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, body, "GET /api/routes lists them")
}

// TestDictionaries: every key of the English dictionary has a Danish
// string and the other way round, and every data-i18n key of the page
// is in both.
func TestDictionaries(t *testing.T) {
	g := newGateway(t)
	bctx := browser(t)
	ctx, cancel := chromedp.NewContext(bctx)
	defer cancel()
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(g.url+"/")))
	missing := eval[[]string](t, ctx, `(() => {
		const en = window.I18N.en, da = window.I18N.da, out = [];
		for (const k in en) if (!(k in da)) out.push("da lacks " + k);
		for (const k in da) if (!(k in en)) out.push("en lacks " + k);
		for (const e of document.querySelectorAll("[data-i18n]")) if (!(e.dataset.i18n in en)) out.push("page key " + e.dataset.i18n);
		for (const k of ["days"]) if (en[k].length !== 7 || da[k].length !== 7) out.push(k);
		return out; })()`)
	require.Empty(t, missing)
}
