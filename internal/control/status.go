package control

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/bmsgw/bmsgw/internal/site"
)

// Status is what the engine knows now, for `bmsgw status` and the API.
type Status struct {
	Time    time.Time      `json:"time"`
	DryRun  bool           `json:"dry_run"`
	Devices []DeviceStatus `json:"devices"`
	Points  []PointStatus  `json:"points"`
	// Feeds are the booking feeds the plans come from. The engine does
	// not know them: the gateway adds them.
	Feeds []FeedStatus `json:"feeds,omitempty"`
}

// FeedStatus is the health of one booking source.
type FeedStatus struct {
	Source string `json:"source"`
	// OK is set when the latest poll was good.
	OK bool `json:"ok"`
	// LastSuccess is when the last good poll started; zero if none.
	LastSuccess time.Time `json:"last_success"`
	// ConsecutiveFailures counts failed polls since the last good one,
	// and LastError is the latest failure's error.
	ConsecutiveFailures int    `json:"consecutive_failures"`
	LastError           string `json:"last_error,omitempty"`
	// FromCache is set when the bookings in use come from the last good
	// feed kept in the state directory, fetched at FetchedAt.
	FromCache bool      `json:"from_cache"`
	FetchedAt time.Time `json:"fetched_at"`
	// Bookings is how many bookings the plans use from it.
	Bookings int `json:"bookings"`
}

// DeviceStatus is one device's health.
type DeviceStatus struct {
	Site       string    `json:"site"`
	Connection string    `json:"connection"`
	Device     string    `json:"device"`
	Up         bool      `json:"up"`
	Since      time.Time `json:"since"`
	LastError  string    `json:"last_error,omitempty"`
}

// PointStatus is one writable point: what it should be, what it is, and why.
type PointStatus struct {
	Site          string    `json:"site"`
	Point         string    `json:"point"`
	Desired       *float64  `json:"desired"`
	DesiredText   string    `json:"desired_text"`
	Source        Source    `json:"source"`
	Reason        string    `json:"reason"`
	Actual        *float64  `json:"actual"`
	ActualText    string    `json:"actual_text"`
	ActualAt      time.Time `json:"actual_at"`
	ActualErr     string    `json:"actual_error,omitempty"`
	InSync        bool      `json:"in_sync"`
	Pending       bool      `json:"pending"`
	LastError     string    `json:"last_error,omitempty"`
	RetryAt       time.Time `json:"retry_at"`
	Override      *Override `json:"override,omitempty"`
	ExternalUntil time.Time `json:"external_until"`
	// DeviceDown: every device of the point's connection is down, so the
	// gateway writes nothing to it until one is back.
	DeviceDown bool `json:"device_down,omitempty"`
}

// Status returns a snapshot of devices and points, sorted by site and id.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	var st Status
	err := e.do(ctx, func() {
		now := e.cfg.Clock.Now()
		st.Time, st.DryRun = now, e.cfg.DryRun
		for key, d := range e.devices {
			parts := strings.SplitN(key, "/", 3)
			st.Devices = append(st.Devices, DeviceStatus{Site: parts[0], Connection: parts[1], Device: d.Device, Up: d.Up, Since: d.Since, LastError: d.LastError})
		}
		slices.SortFunc(st.Devices, func(a, b DeviceStatus) int {
			return strings.Compare(a.Site+"/"+a.Connection+"/"+a.Device, b.Site+"/"+b.Connection+"/"+b.Device)
		})
		texts := reasonTexts{}
		for _, ps := range e.pointIndex() {
			p := PointStatus{Site: ps.site.rt.Site.ID, Point: ps.point.ID, Pending: ps.pending, RetryAt: ps.retryAt(),
				DeviceDown: e.driverDown[ps.driver]}
			if g, ok := e.desired(ps, now); ok {
				v := g.value
				p.Desired, p.Source, p.Reason = &v, g.src, texts.text(g)
				p.DesiredText = ps.point.Format(site.Value{Num: v, Label: ps.point.Label(v)})
				p.InSync = ps.actualOK && same(ps.point, ps.actual, v)
			}
			if ps.actualOK {
				v := ps.actual
				p.Actual = &v
				p.ActualText = ps.point.Format(site.Value{Num: v, Label: ps.point.Label(v)})
				p.ActualAt = ps.actualAt
			}
			if t := ps.trouble; t != nil {
				p.LastError = t.lastErr
				if t.actualErr != nil {
					p.ActualErr = t.actualErr.Error()
				}
			}
			if o := e.overrides[ps]; o != nil {
				oc := *o
				p.Override = &oc
			}
			if till := ps.respectTill(); ps.external && now.Before(till) {
				p.ExternalUntil = till
			}
			st.Points = append(st.Points, p)
		}
		slices.SortFunc(st.Points, func(a, b PointStatus) int { return strings.Compare(a.Site+"/"+a.Point, b.Site+"/"+b.Point) })
	})
	return st, err
}
