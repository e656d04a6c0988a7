package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/events"
)

// Metrics are the gateway's Prometheus metrics, served at /metrics. The
// engine and the daemon report to it through its methods; every method
// is safe for concurrent use, and a nil *Metrics ignores every call, so
// code can report without knowing whether anyone collects.
type Metrics struct {
	reg        *prometheus.Registry
	writes     *prometheus.CounterVec
	errs       *prometheus.CounterVec
	deviceUp   *prometheus.GaugeVec
	lag        prometheus.Gauge
	lagHist    prometheus.Histogram
	events     *prometheus.CounterVec
	severities *prometheus.CounterVec
	requests   *prometheus.CounterVec
	feedOK     *prometheus.GaugeVec
	feedGood   *prometheus.GaugeVec
	feedFails  *prometheus.GaugeVec
	feedCount  *prometheus.GaugeVec
}

// Write results, the values of the result label of bmsgw_writes_total.
const (
	resultOK     = "ok"
	resultFailed = "failed"
)

// NewMetrics defines the gateway's collectors on reg. With a nil reg it
// makes a registry of its own that also holds the Go runtime and process
// collectors (memory, goroutines, open files), which a gateway's owner
// wants beside its own figures.
func NewMetrics(reg *prometheus.Registry) (*Metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
		if err := errors.Join(
			reg.Register(collectors.NewGoCollector()),
			reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	m := &Metrics{
		reg: reg,
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmsgw_writes_total",
			Help: "Point writes to devices, by site and result (ok or failed).",
		}, []string{"site", "result"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmsgw_errors_total",
			Help: "Errors a person may have to look into, by the component that met them (engine, journal, feed, access, api...).",
		}, []string{"component"}),
		deviceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bmsgw_device_up",
			Help: "1 if the device behind a connection answers, 0 if it is down.",
		}, []string{"site", "connection"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bmsgw_reconcile_lag_seconds",
			Help: "How long the last reconcile pass ran behind the instant it was due (seconds).",
		}),
		lagHist: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bmsgw_reconcile_lag_seconds_distribution",
			Help:    "How far reconcile passes ran behind the instant they were due (seconds).",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300},
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmsgw_events_total",
			Help: "Events stored in the journal, by kind.",
		}, []string{"kind"}),
		severities: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmsgw_events_by_severity_total",
			Help: "Events stored in the journal, by severity.",
		}, []string{"severity"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bmsgw_http_requests_total",
			Help: "Requests to the HTTP API, by route pattern and status code.",
		}, []string{"route", "code"}),
		feedOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bmsgw_feed_ok",
			Help: "1 if the booking source's latest poll was good, 0 if it failed (the plans then use its last good feed).",
		}, []string{"source"}),
		feedGood: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bmsgw_feed_last_success_timestamp_seconds",
			Help: "When the booking source's last good poll started (Unix time); absent if it never had one.",
		}, []string{"source"}),
		feedFails: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bmsgw_feed_consecutive_failures",
			Help: "Failed polls of the booking source since its last good one.",
		}, []string{"source"}),
		feedCount: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bmsgw_feed_bookings",
			Help: "Bookings the plans use from the booking source.",
		}, []string{"source"}),
	}
	// Kinds and severities are closed lists: every series exists from the
	// start, so that rate() and alerts see 0 rather than nothing.
	for _, k := range events.Kinds {
		m.events.WithLabelValues(string(k))
	}
	for _, s := range events.Severities {
		m.severities.WithLabelValues(string(s))
	}
	for _, c := range []prometheus.Collector{m.writes, m.errs, m.deviceUp, m.lag, m.lagHist, m.events, m.severities, m.requests,
		m.feedOK, m.feedGood, m.feedFails, m.feedCount} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// Registry returns the registry the metrics are on, for other parts of
// the gateway to add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// WriteDone counts one point write at a site: ok, or failed.
func (m *Metrics) WriteDone(site string, ok bool) {
	if m == nil {
		return
	}
	r := resultOK
	if !ok {
		r = resultFailed
	}
	m.writes.WithLabelValues(site, r).Inc()
}

// Error counts an error met by a component of the gateway.
func (m *Metrics) Error(component string) {
	if m == nil {
		return
	}
	m.errs.WithLabelValues(component).Inc()
}

// DeviceUp records whether the device behind a connection of a site
// answers.
func (m *Metrics) DeviceUp(site, conn string, up bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	m.deviceUp.WithLabelValues(site, conn).Set(v)
}

// ForgetSite drops the device series of a site, after a reload removed it
// or its connections, so that a gone device is not reported down forever.
func (m *Metrics) ForgetSite(site string) {
	if m == nil {
		return
	}
	m.deviceUp.DeletePartialMatch(prometheus.Labels{"site": site})
}

// Feed records the health of a booking source after a poll.
func (m *Metrics) Feed(f control.FeedStatus) {
	if m == nil {
		return
	}
	ok := 0.0
	if f.OK {
		ok = 1
	}
	m.feedOK.WithLabelValues(f.Source).Set(ok)
	if !f.LastSuccess.IsZero() {
		m.feedGood.WithLabelValues(f.Source).Set(float64(f.LastSuccess.UnixNano()) / 1e9)
	}
	m.feedFails.WithLabelValues(f.Source).Set(float64(f.ConsecutiveFailures))
	m.feedCount.WithLabelValues(f.Source).Set(float64(f.Bookings))
}

// ForgetFeed drops the series of a booking source a reload removed.
func (m *Metrics) ForgetFeed(source string) {
	if m == nil {
		return
	}
	for _, g := range []*prometheus.GaugeVec{m.feedOK, m.feedGood, m.feedFails, m.feedCount} {
		g.DeleteLabelValues(source)
	}
}

// ForgetConnection drops the device series of one connection of a site,
// after a reload removed it.
func (m *Metrics) ForgetConnection(site, conn string) {
	if m == nil {
		return
	}
	m.deviceUp.DeleteLabelValues(site, conn)
}

// ReconcileLag records how many seconds a reconcile pass ran behind the
// instant it was due.
func (m *Metrics) ReconcileLag(seconds float64) {
	if m == nil {
		return
	}
	m.lag.Set(seconds)
	m.lagHist.Observe(seconds)
}

// Event counts one stored event. FollowEvents calls it for every event of
// a bus; call it directly only for events that do not go through one.
func (m *Metrics) Event(kind events.Kind, severity events.Severity) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(string(kind)).Inc()
	m.severities.WithLabelValues(string(severity)).Inc()
}

// followPage is how many stored events FollowEvents reads per query when
// it catches up after falling behind.
const followPage = 500

// FollowEvents counts every event the bus stores from now on until ctx is
// done (nil) or the bus is closed (events.ErrClosed). When it falls
// behind the bus it catches up from the journal, so no event is counted
// twice or missed. Run it in a goroutine the daemon owns.
func (m *Metrics) FollowEvents(ctx context.Context, bus *events.Bus) error {
	if m == nil {
		return nil
	}
	sub, err := bus.Subscribe(events.Filter{})
	if err != nil {
		return err
	}
	last := sub.AfterID
	for {
		select {
		case <-ctx.Done():
			sub.Cancel()
			return nil
		case e, ok := <-sub.C:
			if ok {
				if e.ID > last {
					m.Event(e.Kind, e.Severity)
					last = e.ID
				}
				continue
			}
			if err := sub.Err(); !errors.Is(err, events.ErrLagged) {
				return err
			}
			// Subscribe again first, then count what the journal stored
			// meanwhile up to where the new subscription begins.
			if sub, err = bus.Subscribe(events.Filter{}); err != nil {
				return err
			}
			for last < sub.AfterID {
				evs, err := bus.Query(ctx, events.Filter{SinceID: last, First: followPage})
				if err != nil {
					sub.Cancel()
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				for _, e := range evs {
					if e.ID > sub.AfterID {
						break // the subscription delivers it
					}
					m.Event(e.Kind, e.Severity)
					last = e.ID
				}
				if len(evs) < followPage || evs[len(evs)-1].ID >= sub.AfterID {
					// Caught up. Entries that are not events may lie
					// between the last event and AfterID.
					last = max(last, sub.AfterID)
				}
			}
		}
	}
}

// request counts one API request.
func (m *Metrics) request(route string, code int) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(route, fmt.Sprint(code)).Inc()
}

// handler serves the metrics in Prometheus' text format.
func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
