package bookings

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Format is the data format of a booking feed.
type Format string

// Feed formats.
const (
	// FormatICal is an iCalendar (RFC 5545) feed; recurring events are
	// expanded for each poll's window.
	FormatICal Format = "ical"
	// FormatCSV is a CSV file with a header row naming the columns.
	FormatCSV Format = "csv"
	// FormatJSON is a JSON array of booking objects, or an object holding
	// such an array under Fields.ArrayKey.
	FormatJSON Format = "json"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultInterval          = 5 * time.Minute
	DefaultTimeout           = 30 * time.Second
	DefaultMaxBodyBytes      = 16 << 20
	DefaultMissingPolls      = 3
	DefaultEmptyFraction     = 0.5
	DefaultResourceProperty  = "LOCATION"
	DefaultOrganiserProperty = "X-ASSOCIATION-ID"
	// ShrinkCheckMinimum is the last good count from which on a feed that
	// shrinks below EmptyFraction of it is treated as failed.
	ShrinkCheckMinimum = 20
)

// Fields names the columns of a CSV feed or the keys of a JSON feed's
// objects. Empty names take the defaults shown.
type Fields struct {
	ID        string // default "id"; required
	Resource  string // default "resource"; required
	Organiser string // default "organiser"; optional column
	Start     string // default "start"; required
	End       string // default "end"; required
	Status    string // default "status"; optional column, empty = confirmed
}

// Options configure a booking Source. Options is data: New validates it and
// builds the runtime Source.
type Options struct {
	// ID names the source in bookings, logs and the state file; letters,
	// digits, '.', '_' and '-'. Required.
	ID string
	// Format is ical, csv or json. Required.
	Format Format
	// Path is a local file to read. Exactly one of Path and URL is set.
	Path string
	// URL is an http or https address to poll with conditional GET.
	URL string
	// Interval is the time between polls in Run. Default 5m.
	Interval time.Duration
	// Timeout bounds one HTTP request, body included. Default 30s.
	Timeout time.Duration
	// RetryMin is the wait after the first failed poll in Run; each further
	// consecutive failure doubles it, up to RetryMax.
	// Default min(30s, Interval).
	RetryMin time.Duration
	// RetryMax caps the wait between polls after failures. Default 4×Interval.
	RetryMax time.Duration
	// Headers are added to every HTTP request. Their values are secrets
	// (e.g. "Authorization: Bearer …") and are never logged.
	Headers map[string]string
	// MaxBodyBytes is the largest feed accepted. Default 16 MiB.
	MaxBodyBytes int64
	// MissingPolls is how many consecutive good polls a booking must be
	// missing from the feed before it counts as cancelled. Default 3.
	MissingPolls int
	// EmptyFraction: a feed whose booking count falls below this fraction
	// of the last good count (when that was at least ShrinkCheckMinimum)
	// is treated as failed. Default 0.5; negative disables the check.
	EmptyFraction float64
	// AllowEmpty accepts a feed with no bookings in the window as good.
	// By default an empty feed is treated as failed, because a broken
	// export far more often yields nothing than a school has no bookings.
	AllowEmpty bool
	// StateDir holds the last good feed so that a restarted gateway serves
	// it before its first successful fetch. Empty disables persistence.
	StateDir string
	// Location is the time zone of local times in CSV and JSON feeds and
	// of floating iCalendar times (unless the calendar names a valid
	// X-WR-TIMEZONE). Required.
	Location *time.Location
	// ResourceProperty is the iCalendar property holding the resource id:
	// LOCATION, RESOURCES or any X- property. Default LOCATION.
	ResourceProperty string
	// OrganiserProperty is the iCalendar property holding the association
	// id. Default X-ASSOCIATION-ID. ORGANIZER is refused: it holds
	// personal data; set PseudonymKey instead.
	OrganiserProperty string
	// PseudonymKey, when set, makes the organiser of an iCalendar event
	// without OrganiserProperty "anon-" plus 12 hex digits of
	// HMAC-SHA256(PseudonymKey, lower-cased ORGANIZER). It is a secret.
	PseudonymKey []byte
	// PseudonymiseOrganiser replaces every CSV and JSON organiser value
	// with its pseudonym, for feeds whose organiser column holds names or
	// e-mail addresses. It requires PseudonymKey.
	PseudonymiseOrganiser bool
	// Fields names the CSV columns or JSON keys.
	Fields Fields
	// Delimiter separates CSV fields. Zero detects ',' or ';' from the
	// header row.
	Delimiter rune
	// ArrayKey is the key of the bookings array when a JSON feed is an
	// object; dots descend into nested objects ("data.bookings"). Empty
	// means the feed is the array itself.
	ArrayKey string

	// Client makes the HTTP requests; nil uses a client without timeout
	// of its own (Timeout applies per request). Headers are dropped on a
	// redirect to another host whichever client is used.
	Client *http.Client
	// Now is the clock; nil uses time.Now.
	Now func() time.Time
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// headerName matches an HTTP header field name (an RFC 9110 token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// withDefaults validates o and returns it with defaults applied; it
// collects every problem found.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if !idPattern.MatchString(o.ID) {
		bad("id %q: want letters, digits, '.', '_' or '-'", o.ID)
	}
	switch o.Format {
	case FormatICal, FormatCSV, FormatJSON:
	default:
		bad("format %q: want ical, csv or json", o.Format)
	}
	switch {
	case o.Path == "" && o.URL == "":
		bad("set path or url")
	case o.Path != "" && o.URL != "":
		bad("set path or url, not both")
	case o.URL != "":
		u, err := url.Parse(o.URL)
		switch {
		case err != nil:
			// The parse error quotes the URL, which may hold a token.
			bad("url %s: not a valid URL", redactURL(o.URL))
		case u.Scheme != "http" && u.Scheme != "https":
			bad("url %s: scheme must be http or https", redactURL(o.URL))
		case u.Host == "":
			bad("url %s: no host", redactURL(o.URL))
		}
	}
	if o.Location == nil {
		bad("location is required: local and floating times need a time zone")
	}
	for name, value := range o.Headers {
		if !headerName.MatchString(name) {
			bad("header %q: not a valid header name", name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			// Never echo the value: it is a secret.
			bad("header %q: value contains a line break or NUL", name)
		}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"interval", &o.Interval, DefaultInterval},
		{"timeout", &o.Timeout, DefaultTimeout},
	} {
		switch {
		case *d.v < 0:
			bad("%s %s: must not be negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if o.RetryMin < 0 || o.RetryMax < 0 {
		bad("retry_min and retry_max must not be negative")
	}
	if o.RetryMin == 0 {
		o.RetryMin = min(30*time.Second, o.Interval)
	}
	if o.RetryMax == 0 {
		o.RetryMax = 4 * o.Interval
	}
	if o.RetryMax < o.RetryMin {
		bad("retry_max %s is below retry_min %s", o.RetryMax, o.RetryMin)
	}
	switch {
	case o.MaxBodyBytes < 0:
		bad("max_body_bytes %d: must not be negative", o.MaxBodyBytes)
	case o.MaxBodyBytes == 0:
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	switch {
	case o.MissingPolls < 0:
		bad("missing_polls %d: must not be negative", o.MissingPolls)
	case o.MissingPolls == 0:
		o.MissingPolls = DefaultMissingPolls
	}
	switch {
	case o.EmptyFraction > 1:
		bad("empty_fraction %g: must be at most 1", o.EmptyFraction)
	case o.EmptyFraction == 0:
		o.EmptyFraction = DefaultEmptyFraction
	}
	if o.ResourceProperty == "" {
		o.ResourceProperty = DefaultResourceProperty
	}
	if o.OrganiserProperty == "" {
		o.OrganiserProperty = DefaultOrganiserProperty
	}
	o.ResourceProperty = strings.ToUpper(o.ResourceProperty)
	o.OrganiserProperty = strings.ToUpper(o.OrganiserProperty)
	if !usableProperty(o.ResourceProperty) {
		bad("resource_property %q: want LOCATION, SUMMARY, RESOURCES or an X- property", o.ResourceProperty)
	}
	switch {
	case o.OrganiserProperty == "ORGANIZER" || o.OrganiserProperty == "SUMMARY":
		bad("organiser_property %s may hold personal data; set a pseudonym key instead", o.OrganiserProperty)
	case !usableProperty(o.OrganiserProperty):
		bad("organiser_property %q: want LOCATION, RESOURCES or an X- property", o.OrganiserProperty)
	}
	if o.PseudonymiseOrganiser && len(o.PseudonymKey) == 0 {
		bad("pseudonymise_organiser needs a pseudonym key")
	}
	f := &o.Fields
	for _, c := range []struct {
		v   *string
		def string
	}{
		{&f.ID, "id"}, {&f.Resource, "resource"}, {&f.Organiser, "organiser"},
		{&f.Start, "start"}, {&f.End, "end"}, {&f.Status, "status"},
	} {
		if *c.v == "" {
			*c.v = c.def
		}
	}
	switch o.Delimiter {
	case 0, ',', ';', '\t', '|':
	default:
		bad("delimiter %q: want ',', ';', tab or '|'", o.Delimiter)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("booking source %q: %w", o.ID, errors.Join(errs...))
	}
	return o, nil
}

func usableProperty(p string) bool {
	switch p {
	case "LOCATION", "SUMMARY", "RESOURCES":
		return true
	}
	return strings.HasPrefix(p, "X-") && len(p) > 2
}

// LogValue lists the options without secrets: header values and the
// pseudonym key are redacted, and the URL loses its query and user info.
func (o Options) LogValue() slog.Value {
	target := o.Path
	if o.URL != "" {
		target = redactURL(o.URL)
	}
	names := make([]string, 0, len(o.Headers))
	for k := range o.Headers {
		names = append(names, k)
	}
	return slog.GroupValue(
		slog.String("id", o.ID),
		slog.String("format", string(o.Format)),
		slog.String("target", target),
		slog.Duration("interval", o.Interval),
		slog.Any("headers", names),
		slog.Bool("pseudonym_key", len(o.PseudonymKey) > 0),
	)
}

// redactURL renders a URL without user info and query, which often carry
// credentials ("?token=…").
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable url]"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	u.Fragment = ""
	return u.String()
}
