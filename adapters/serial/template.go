package serial

import (
	"fmt"
	"regexp"
	"strings"
)

// template is a text with {name} fields, such as the point name
// "door{door}_contact" or the command "UNLOCK {door} {value}". "{{" and
// "}}" stand for literal braces.
type template struct {
	src   string
	parts []tpart
}

// tpart is a literal text or, when field is set, a field.
type tpart struct {
	lit   string
	field string
}

var fieldName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseTemplate parses a template.
func parseTemplate(s string) (template, error) {
	t := template{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, tpart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '{' && i+1 < len(s) && s[i+1] == '{':
			lit.WriteByte('{')
			i++
		case c == '}' && i+1 < len(s) && s[i+1] == '}':
			lit.WriteByte('}')
			i++
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return template{}, fmt.Errorf("template %q: unclosed {", s)
			}
			name := s[i+1 : i+end]
			if !fieldName.MatchString(name) {
				return template{}, fmt.Errorf("template %q: {%s} is not a field name (letters, digits and _; {{ for a literal brace)", s, name)
			}
			flush()
			t.parts = append(t.parts, tpart{field: name})
			i += end
		case c == '}':
			return template{}, fmt.Errorf("template %q: } without { (}} for a literal brace)", s)
		default:
			lit.WriteByte(c)
		}
	}
	flush()
	return t, nil
}

// fields returns the names of the template's fields, in order, once each.
func (t template) fields() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range t.parts {
		if p.field != "" && !seen[p.field] {
			seen[p.field] = true
			out = append(out, p.field)
		}
	}
	return out
}

// fixed reports whether the template has no fields.
func (t template) fixed() bool { return len(t.fields()) == 0 }

// render fills the fields; value returns the text of a field (the
// fields were checked against what value knows when the template was
// validated).
func (t template) render(value func(field string) string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.field != "" {
			b.WriteString(value(p.field))
		} else {
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

// matcher returns a regular expression that matches the texts the
// template can render, with any non-empty text in place of a field.
func (t template) matcher() *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, p := range t.parts {
		if p.field != "" {
			b.WriteString("(?:.+)")
		} else {
			b.WriteString(regexp.QuoteMeta(p.lit))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func (t template) String() string { return t.src }
