package config

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// The leaf types below decode themselves from YAML scalars (decodeScalar);
// their MarshalYAML methods write them back in the form the decoder
// reads, so that a MappingFile or GatewayFile built in code (a generator,
// a migration) marshals with yaml.v3 into a file Load accepts.

// MarshalYAML writes the zone's IANA name.
func (z TimeZone) MarshalYAML() (any, error) {
	if z.Name == "" && z.Location != nil {
		return z.Location.String(), nil
	}
	return z.Name, nil
}

// MarshalYAML writes where the secret comes from (${ENV_VAR} or
// file:/path), never the secret itself.
func (s Secret) MarshalYAML() (any, error) { return s.Ref, nil }

// MarshalYAML writes the time quoted, "HH:MM", as the mapping reference
// asks integrators to write it: unquoted, YAML 1.1 readers take 08:00 for
// a number of minutes.
func (c Clock) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: c.Clock.String(), Style: yaml.DoubleQuotedStyle}, nil
}

// MarshalYAML writes the date plain, YYYY-MM-DD. The timestamp tag keeps
// yaml.v3 from quoting it; the decoder reads the text whatever its tag.
func (d Date) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!timestamp", Value: d.Date.String()}, nil
}

// MarshalYAML writes a number or true/false plain and a label as text,
// quoted only where YAML would otherwise read it as something else.
func (s Scalar) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: s.Text}
	switch s.Kind {
	case "number":
		n.Tag = "!!float"
		if _, err := strconv.ParseInt(s.Text, 10, 64); err == nil {
			n.Tag = "!!int"
		}
	case "bool":
		n.Tag = "!!bool"
	default:
		n.Tag = "!!str"
	}
	return n, nil
}
