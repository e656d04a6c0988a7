package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// The decoder walks yaml.v3's node tree itself instead of calling
// yaml.Unmarshal with KnownFields: yaml.v3 stops at the first syntax error
// but reports type errors with a line only and no column, and a custom
// UnmarshalYAML on a struct silently drops KnownFields (go-yaml/yaml#460).
// Walking the nodes gives every error its line and column, lets one pass
// report all errors of a file, and records where every value came from so
// that later semantic checks can name file:line:column too.

// scalar is implemented by leaf types that parse themselves from a YAML
// scalar (secrets, time zones, clock times).
type scalar interface {
	decodeScalar(n *yaml.Node) error
}

// enumerated is implemented by string types with a fixed set of values.
// The decoder checks them and the JSON Schema lists them.
type enumerated interface {
	enumValues() []string
}

var durationType = reflect.TypeFor[time.Duration]()

type posKey struct {
	ptr uintptr
	typ reflect.Type
}

// Positions remembers where each decoded value came from. Keys are the
// addresses of the decoded values, so it stays valid as long as the
// decoded structs are not copied or their slices grown.
type Positions struct {
	file string
	at   map[posKey]Pos
	keys map[posKey]map[string]Pos
	set  map[posKey]map[string]bool
}

func newPositions(file string) *Positions {
	return &Positions{file: file, at: map[posKey]Pos{}, keys: map[posKey]map[string]Pos{}, set: map[posKey]map[string]bool{}}
}

func keyOf(ptr any) posKey {
	v := reflect.ValueOf(ptr)
	if v.Kind() != reflect.Pointer {
		panic("config: position of a non-pointer")
	}
	return posKey{v.Pointer(), v.Type().Elem()}
}

// Of returns the position of the value ptr points to, or the file alone if
// it was not decoded from the file.
func (p *Positions) Of(ptr any) Pos {
	if pos, ok := p.at[keyOf(ptr)]; ok {
		return pos
	}
	return Pos{File: p.file}
}

// Key returns the position of key in the map or struct ptr points to,
// falling back to the position of the map itself.
func (p *Positions) Key(ptr any, key string) Pos {
	if pos, ok := p.keys[keyOf(ptr)][key]; ok {
		return pos
	}
	return p.Of(ptr)
}

// Has reports whether the struct ptr points to had key set in the file.
func (p *Positions) Has(ptr any, key string) bool {
	return p.set[keyOf(ptr)][key]
}

type decoder struct {
	file string
	pos  *Positions
	errs *errs
}

func (d *decoder) at(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

func (d *decoder) record(v reflect.Value, n *yaml.Node) {
	if v.CanAddr() {
		d.pos.at[posKey{v.Addr().Pointer(), v.Type()}] = d.at(n)
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing (null)"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, what string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.record(v, n)
	if v.CanAddr() {
		if s, ok := v.Addr().Interface().(scalar); ok {
			if n.Kind != yaml.ScalarNode {
				d.errs.add(d.at(n), "%s must be a single value, not %s", what, kindName(n))
				return
			}
			if err := s.decodeScalar(n); err != nil {
				d.errs.add(d.at(n), "%s: %v", what, err)
			}
			return
		}
	}
	if v.Type() == durationType {
		d.duration(n, v, what)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			return
		}
		// Set the pointer only if its value decoded cleanly, so that a bad
		// value is reported once and not again by checks that use it.
		e := reflect.New(v.Type().Elem())
		before := len(d.errs.list)
		d.decode(n, e.Elem(), what)
		// A mapping is kept even with bad values inside: its other
		// fields still get checked, and it is not "missing".
		_, leaf := e.Interface().(scalar)
		if len(d.errs.list) == before || (e.Elem().Kind() == reflect.Struct && !leaf) {
			v.Set(e)
		}
	case reflect.Struct:
		d.structure(n, v, what)
	case reflect.Slice:
		d.list(n, v, what)
	case reflect.Map:
		d.mapping(n, v, what)
	case reflect.String:
		d.str(n, v, what)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			d.errs.add(d.at(n), "%s must be true or false, not %s", what, kindName(n))
			return
		}
		b, _ := strconv.ParseBool(n.Value)
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := d.integer(n, what)
		if !ok {
			return
		}
		if v.OverflowInt(i) {
			d.errs.add(d.at(n), "%s %d is out of range", what, i)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := d.integer(n, what)
		if !ok {
			return
		}
		if i < 0 || v.OverflowUint(uint64(i)) {
			max := uint64(1)<<(v.Type().Bits()) - 1
			d.errs.add(d.at(n), "%s %d is out of range; use 0 to %d", what, i, max)
			return
		}
		v.SetUint(uint64(i))
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			d.errs.add(d.at(n), "%s must be a number, not %s", what, kindName(n))
			return
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.errs.add(d.at(n), "%s must be a finite number, not %q", what, n.Value)
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("config: cannot decode into %s", v.Type()))
	}
}

func (d *decoder) integer(n *yaml.Node, what string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		d.errs.add(d.at(n), "%s must be a whole number, not %s", what, kindName(n))
		return 0, false
	}
	i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil {
		d.errs.add(d.at(n), "%s %q is not a whole number", what, n.Value)
		return 0, false
	}
	return i, true
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errs.add(d.at(n), "%s must be a duration such as 90s, 15m or 1h30m, not %s", what, kindName(n))
		return
	}
	if n.Tag == "!!int" || n.Tag == "!!float" {
		d.errs.add(d.at(n), "%s %s has no unit; write e.g. %ss, %sm or %sh", what, n.Value, n.Value, n.Value, n.Value)
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.errs.add(d.at(n), "%s %q is not a duration; write e.g. 90s, 15m or 1h30m", what, n.Value)
		return
	}
	if dur < 0 {
		d.errs.add(d.at(n), "%s %q must not be negative", what, n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) str(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errs.add(d.at(n), "%s must be a text value, not %s", what, kindName(n))
		return
	}
	if allowed := enumOf(v); allowed != nil {
		if !slices.Contains(allowed, n.Value) {
			msg := fmt.Sprintf("%s %q is not one of %s", what, n.Value, strings.Join(allowed, ", "))
			if s := suggest(n.Value, allowed); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			d.errs.add(d.at(n), "%s", msg)
			return
		}
	}
	v.SetString(n.Value)
}

func (d *decoder) list(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind != yaml.SequenceNode {
		d.errs.add(d.at(n), "%s must be a list (lines starting with \"- \" or [a, b]), not %s", what, kindName(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	v.Set(s)
	for i, c := range n.Content {
		d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", what, i))
	}
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind != yaml.MappingNode {
		d.errs.add(d.at(n), "%s must be a mapping (key: value), not %s", what, kindName(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("config: only string-keyed maps are supported")
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	v.Set(m)
	keys := map[string]Pos{}
	first := map[string]Pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errs.add(d.at(k), "keys of %s must be text", what)
			continue
		}
		if p, dup := first[k.Value]; dup {
			d.errs.add(d.at(k), "%s has key %q twice (first at line %d); remove one", what, k.Value, p.Line)
			continue
		}
		first[k.Value] = d.at(k)
		keys[k.Value] = d.at(k)
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, join(what, k.Value))
		m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
	}
	if v.CanAddr() {
		d.pos.keys[posKey{v.Addr().Pointer(), v.Type()}] = keys
	}
}

// field is one YAML key of a struct.
type field struct {
	name     string
	index    int
	required bool
}

// fieldCache holds fieldsOf per type: a 72-school configuration decodes
// the same few struct types hundreds of thousands of times.
var fieldCache sync.Map // reflect.Type → []field

func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	fs := computeFields(t)
	fieldCache.Store(t, fs)
	return fs
}

func computeFields(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			panic(fmt.Sprintf("config: field %s.%s has no yaml tag", t.Name(), f.Name))
		}
		js := f.Tag.Get("jsonschema")
		fs = append(fs, field{name: name, index: i, required: slices.Contains(strings.Split(js, ","), "required")})
	}
	return fs
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind != yaml.MappingNode {
		d.errs.add(d.at(n), "%s must be a mapping (key: value), not %s", describe(what), kindName(n))
		return
	}
	fs := fieldsOf(v.Type())
	byName := map[string]field{}
	var names []string
	for _, f := range fs {
		byName[f.name] = f
		names = append(names, f.name)
	}
	keys := map[string]Pos{}
	set := map[string]bool{}
	var apply func(n *yaml.Node, merged bool)
	apply = func(n *yaml.Node, merged bool) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				// "<<: *anchor" lets integrators share blocks; keys of the
				// mapping itself win over merged ones.
				for val.Kind == yaml.AliasNode {
					val = val.Alias
				}
				srcs := []*yaml.Node{val}
				if val.Kind == yaml.SequenceNode {
					srcs = val.Content
				}
				for _, s := range srcs {
					for s.Kind == yaml.AliasNode {
						s = s.Alias
					}
					if s.Kind != yaml.MappingNode {
						d.errs.add(d.at(k), "<< in %s must merge a mapping", what)
						continue
					}
					apply(s, true)
				}
				continue
			}
			if k.Kind != yaml.ScalarNode {
				d.errs.add(d.at(k), "keys of %s must be text", what)
				continue
			}
			f, ok := byName[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown key %q in %s", k.Value, describe(what))
				if s := suggest(k.Value, names); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				} else {
					msg += "; valid keys are " + strings.Join(names, ", ")
				}
				d.errs.add(d.at(k), "%s", msg)
				continue
			}
			if set[k.Value] {
				if merged {
					continue
				}
				d.errs.add(d.at(k), "key %q is set twice in %s (first at line %d); remove one", k.Value, what, keys[k.Value].Line)
				continue
			}
			set[k.Value] = true
			keys[k.Value] = d.at(k)
			d.decode(val, v.Field(f.index), join(what, k.Value))
		}
	}
	// Own keys first so that they win over merged ones.
	own := &yaml.Node{Kind: yaml.MappingNode}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Tag == "!!merge" {
			merges = append(merges, n.Content[i], n.Content[i+1])
		} else {
			own.Content = append(own.Content, n.Content[i], n.Content[i+1])
		}
	}
	apply(own, false)
	if len(merges) > 0 {
		apply(&yaml.Node{Kind: yaml.MappingNode, Content: merges}, true)
	}
	for _, f := range fs {
		if f.required && !set[f.name] {
			d.errs.add(d.at(n), "%s is missing required key %q", describe(what), f.name)
		}
	}
	if v.CanAddr() {
		k := posKey{v.Addr().Pointer(), v.Type()}
		d.pos.keys[k] = keys
		d.pos.set[k] = set
	}
}

func join(what, key string) string {
	if what == "" {
		return key
	}
	return what + "." + key
}

// describe names a place for messages; the document root is "the file".
func describe(what string) string {
	if what == "" {
		return "the file"
	}
	return what
}

// suggest returns the candidate closest to s if it is close enough to be
// a likely typo.
func suggest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if dist := levenshtein(strings.ToLower(s), c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeDocument parses data as one YAML document and decodes it into out,
// which must be a pointer to a struct.
func decodeDocument(file string, data []byte, out any, e *errs) *Positions {
	pos := newPositions(file)
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		p := yamlErrorPos(file, err)
		msg := yamlErrorMsg(err)
		if line, col := firstBadLine(data, p.Line); line > p.Line {
			msg += fmt.Sprintf(" (in the block that starts at line %d); check the indentation", p.Line)
			p.Line, p.Col = line, col
		}
		e.add(p, "%s", msg)
		return pos
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		e.add(Pos{File: file, Line: 1, Col: 1}, "file is empty")
		return pos
	}
	d := &decoder{file: file, pos: pos, errs: e}
	d.decode(doc.Content[0], reflect.ValueOf(out).Elem(), "")
	return pos
}

// firstBadLine finds the line a syntax error is really on. yaml.v3 names
// the line where the enclosing block starts, which for a mis-indented key
// can be far above the mistake; the first prefix of the file that no
// longer parses ends at the offending line.
func firstBadLine(data []byte, from int) (int, int) {
	lines := strings.SplitAfter(string(data), "\n")
	if from < 1 || len(lines) > 5000 {
		return 0, 0
	}
	for k := from; k <= len(lines); k++ {
		var n yaml.Node
		if yaml.Unmarshal([]byte(strings.Join(lines[:k], "")), &n) != nil {
			l := lines[k-1]
			return k, len(l) - len(strings.TrimLeft(l, " ")) + 1
		}
	}
	return 0, 0
}

// yaml.v3 reports syntax errors as "yaml: line N: msg" without a column.
func yamlErrorPos(file string, err error) Pos {
	msg := err.Error()
	var line int
	if _, scanErr := fmt.Sscanf(strings.TrimPrefix(msg, "yaml: "), "line %d:", &line); scanErr == nil {
		return Pos{File: file, Line: line}
	}
	return Pos{File: file}
}

func yamlErrorMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if strings.HasPrefix(msg, "line ") {
		if _, rest, ok := strings.Cut(msg, ": "); ok {
			msg = rest
		}
	}
	return "YAML syntax error: " + msg
}
