package config

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/bmsgw/bmsgw/internal/site"
)

// enums lists the values of the enumerations that live in internal/site,
// where config cannot add methods.
var enums = map[reflect.Type][]string{
	reflect.TypeFor[site.DataType]():     {"bool", "int16", "uint16", "int32", "uint32", "float32", "float64"},
	reflect.TypeFor[site.Access]():       {"read", "write"},
	reflect.TypeFor[site.ModbusTable]():  {"coil", "discrete_input", "holding_register", "input_register"},
	reflect.TypeFor[site.ByteOrder]():    {"big", "little"},
	reflect.TypeFor[site.SpaceKind]():    {"room", "gym", "hall", "pitch", "wing", "building", "other"},
	reflect.TypeFor[site.DetectorKind](): {"contact", "pir", "microwave", "dual_tech", "glass_break", "panic", "water_flow"},
}

func enumOf(v reflect.Value) []string {
	if v.CanAddr() {
		if e, ok := v.Addr().Interface().(enumerated); ok {
			return e.enumValues()
		}
	}
	return enums[v.Type()]
}

// TimeZone is an IANA time zone name, resolved when decoded.
type TimeZone struct {
	Name     string
	Location *time.Location
}

func (z *TimeZone) decodeScalar(n *yaml.Node) error {
	if n.Value == "" || n.Value == "Local" {
		return fmt.Errorf("%q is not an IANA time zone; write e.g. Europe/Copenhagen", n.Value)
	}
	loc, err := time.LoadLocation(n.Value)
	if err != nil {
		return fmt.Errorf("unknown time zone %q; use an IANA name such as Europe/Copenhagen", n.Value)
	}
	z.Name, z.Location = n.Value, loc
	return nil
}

// Secret is a credential read from an environment variable (${NAME}) or
// a file (file:/path). It never holds an inline value from a config file,
// and it never prints itself.
type Secret struct {
	// Ref is where the secret comes from, as written in the file.
	Ref   string
	value string
	// err is kept, not returned by decodeScalar, so that the config can
	// still be validated (and the missing variable reported with its
	// position) by Resolve.
	err error
}

var envRef = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// ErrSecretInline is returned for a secret written into a config file.
var ErrSecretInline = errors.New("secrets must not be written into config files; use ${ENV_VAR} or file:/path/to/secret")

func (s *Secret) decodeScalar(n *yaml.Node) error {
	s.Ref = n.Value
	switch m := envRef.FindStringSubmatch(n.Value); {
	case m != nil:
		v, ok := os.LookupEnv(m[1])
		if !ok || v == "" {
			s.err = fmt.Errorf("environment variable %s is not set; set it or use file:/path", m[1])
		}
		s.value = v
	case strings.HasPrefix(n.Value, "file:"):
		path := strings.TrimPrefix(n.Value, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			s.err = fmt.Errorf("read secret file %s: %w", path, errors.Unwrap(err))
		}
		s.value = strings.TrimRight(string(b), "\r\n")
	default:
		s.Ref = "[inline]"
		return ErrSecretInline
	}
	return s.err
}

// Value returns the secret itself. Call it only where the secret is used.
func (s Secret) Value() string { return s.value }

// String hides the secret.
func (s Secret) String() string { return "[redacted]" }

// GoString hides the secret from %#v.
func (s Secret) GoString() string { return "[redacted]" }

// LogValue hides the secret from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON hides the secret from JSON output.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Clock is a local time of day, HH:MM.
type Clock struct{ site.Clock }

func (c *Clock) decodeScalar(n *yaml.Node) error {
	v, err := site.ParseClock(n.Value)
	if err != nil {
		if n.Tag == "!!int" {
			return fmt.Errorf("time of day %s must be quoted HH:MM, e.g. \"08:00\"", n.Value)
		}
		return err
	}
	c.Clock = v
	return nil
}

// Date is a calendar date, YYYY-MM-DD.
type Date struct{ site.Date }

func (d *Date) decodeScalar(n *yaml.Node) error {
	v, err := site.ParseDate(n.Value)
	if err != nil {
		return err
	}
	d.Date = v
	return nil
}

// Scalar is a point value as written in a mapping: a number, true or
// false, or a label of the point. It is checked against the point when
// the site is resolved.
type Scalar struct {
	Text string
	// Kind is "number", "bool" or "label".
	Kind string
}

func (s *Scalar) decodeScalar(n *yaml.Node) error {
	s.Text = n.Value
	switch n.Tag {
	case "!!int", "!!float":
		s.Kind = "number"
	case "!!bool":
		s.Kind = "bool"
	case "!!str":
		s.Kind = "label"
	case "!!null":
		return errors.New("a value is required: a number, true/false or a label of the point")
	default:
		return fmt.Errorf("%q is not a number, true/false or a label", n.Value)
	}
	return nil
}
