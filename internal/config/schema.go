package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/invopop/jsonschema"
)

// Schemas are generated from the types in types.go and their field
// comments (invopop/jsonschema), so the schema editors use and the
// decoder cannot drift apart. The generated files are committed under
// docs/schema and a test fails when they are stale.

// SchemaKinds are the file kinds that have a JSON Schema.
var SchemaKinds = map[string]any{
	"config":   &GatewayFile{},
	"mapping":  &MappingFile{},
	"template": &TemplateFile{},
}

// Schema generates the JSON Schema of a file kind ("config", "mapping" or
// "template"). sourceDir is the directory of this package's source, whose
// comments become the descriptions; "" leaves descriptions out.
func Schema(kind, sourceDir string) ([]byte, error) {
	v, ok := SchemaKinds[kind]
	if !ok {
		return nil, fmt.Errorf("no schema for %q; use config, mapping or template", kind)
	}
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		ExpandedStruct:             true,
		Anonymous:                  true,
		Mapper:                     mapType,
	}
	if sourceDir != "" {
		if err := r.AddGoComments("github.com/bmsgw/bmsgw/internal/config", sourceDir); err != nil {
			return nil, fmt.Errorf("read comments: %w", err)
		}
	}
	s := r.Reflect(v)
	s.Title = map[string]string{
		"config":   "bmsgw gateway configuration",
		"mapping":  "bmsgw site mapping",
		"template": "bmsgw device template",
	}[kind]
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

const idRegexp = `^[a-z0-9][a-z0-9_-]*$`

func mapType(t reflect.Type) *jsonschema.Schema {
	switch t {
	case durationType:
		return &jsonschema.Schema{Type: "string", Pattern: `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`, Examples: []any{"90s", "15m", "1h30m"}}
	case reflect.TypeFor[TimeZone]():
		return &jsonschema.Schema{Type: "string", Examples: []any{"Europe/Copenhagen"}}
	case reflect.TypeFor[Secret]():
		return &jsonschema.Schema{Type: "string", Pattern: `^(\$\{[A-Za-z_][A-Za-z0-9_]*\}|file:.+)$`, Examples: []any{"${BOOKING_TOKEN}", "file:/run/secrets/booking-token"}}
	case reflect.TypeFor[Clock]():
		return &jsonschema.Schema{Type: "string", Pattern: `^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$`, Examples: []any{"08:00"}}
	case reflect.TypeFor[Date]():
		return &jsonschema.Schema{Type: "string", Format: "date"}
	case reflect.TypeFor[Scalar]():
		return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{{Type: "number"}, {Type: "boolean"}, {Type: "string"}}}
	}
	if t.Kind() == reflect.String {
		var values []string
		if e, ok := reflect.New(t).Interface().(enumerated); ok {
			values = e.enumValues()
		} else {
			values = enums[t]
		}
		if values != nil {
			s := &jsonschema.Schema{Type: "string"}
			for _, v := range values {
				s.Enum = append(s.Enum, v)
			}
			return s
		}
	}
	return nil
}

func oneOfRequired(s *jsonschema.Schema, keys ...string) {
	for _, k := range keys {
		s.OneOf = append(s.OneOf, &jsonschema.Schema{Required: []string{k}})
	}
}

// JSONSchemaExtend says that exactly one feed format is set.
func (Source) JSONSchemaExtend(s *jsonschema.Schema) { oneOfRequired(s, "ical", "csv", "json") }

// JSONSchemaExtend says that exactly one protocol is set.
func (Connection) JSONSchemaExtend(s *jsonschema.Schema) { oneOfRequired(s, "opcua", "modbus") }

// JSONSchemaExtend says that exactly one address is set.
func (Point) JSONSchemaExtend(s *jsonschema.Schema) { oneOfRequired(s, "modbus", "opcua") }

// JSONSchemaExtend says that ids follow the id pattern.
func (SiteInfo) JSONSchemaExtend(s *jsonschema.Schema) { idProp(s) }

func idProp(s *jsonschema.Schema) {
	if p, ok := s.Properties.Get("id"); ok {
		p.Pattern = idRegexp
	}
}
