package bookings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// decodeJSON reads a JSON feed: an array of booking objects, or an object
// holding that array under ArrayKey. A bad object is reported with its
// position and skipped; a syntax error fails the whole feed, since the
// rest of a truncated feed cannot be trusted.
func (s *Source) decodeJSON(body []byte, from, to time.Time) (decoded, error) {
	body = bytes.TrimPrefix(body, utf8BOM)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if s.opts.ArrayKey != "" {
		for _, key := range strings.Split(s.opts.ArrayKey, ".") {
			if err := descend(dec, key); err != nil {
				return decoded{}, fmt.Errorf("json: array key %q: %w", s.opts.ArrayKey, err)
			}
		}
	}
	if err := expectDelim(dec, '['); err != nil {
		if s.opts.ArrayKey == "" {
			return decoded{}, fmt.Errorf("json: %w (set the array key if the bookings are inside an object)", err)
		}
		return decoded{}, fmt.Errorf("json: %w", err)
	}

	f := s.opts.Fields
	c := newCollector(s.opts.ID, from, to)
	for n := 1; dec.More(); n++ {
		where := fmt.Sprintf("item %d (line %d)", n, lineAt(body, dec.InputOffset()))
		var obj map[string]json.RawMessage
		if err := dec.Decode(&obj); err != nil {
			if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
				// The decoder consumed the whole value: go on with the next.
				c.warn("%s: not an object; skipped", where)
				continue
			}
			return decoded{}, fmt.Errorf("json: %s: %w", where, err)
		}
		var errs []error
		get := func(name string) string {
			v, err := field(obj, name)
			if err != nil {
				errs = append(errs, err)
			}
			return v
		}
		raw := rawEntry{
			id: get(f.ID), resource: get(f.Resource), organiser: get(f.Organiser),
			start: get(f.Start), end: get(f.End), status: get(f.Status),
		}
		if len(errs) > 0 {
			c.warn("%s: %v; skipped", where, joinErrors(errs))
			continue
		}
		b, err := s.entry(raw)
		if err != nil {
			c.warn("%s: %v; skipped", where, err)
			continue
		}
		c.add(where, b)
	}
	if err := expectDelim(dec, ']'); err != nil {
		return decoded{}, fmt.Errorf("json: %w", err)
	}
	return c.result(), nil
}

// descend moves dec into the value of key in the next object.
func descend(dec *json.Decoder, key string) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if k, _ := tok.(string); k == key {
			return nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return fmt.Errorf("no key %q", key)
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, found %s", want, describeToken(tok))
	}
	return nil
}

func describeToken(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return fmt.Sprintf("%q", v)
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// field returns a string or number member of obj, looking the name up
// exactly, then case-insensitively; absent and null give "".
func field(obj map[string]json.RawMessage, name string) (string, error) {
	raw, ok := obj[name]
	if !ok {
		for k, v := range obj {
			if strings.EqualFold(k, name) {
				raw, ok = v, true
				break
			}
		}
	}
	if !ok {
		return "", nil
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return strings.TrimSpace(s), nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), nil // numeric ids
	}
	return "", fmt.Errorf("%s: want a string", name)
}

// lineAt returns the 1-based line of the first value at or after offset,
// skipping the whitespace and comma the decoder has not consumed yet.
func lineAt(body []byte, offset int64) int {
	i := int(offset)
	for i < len(body) && strings.IndexByte(" \t\r\n,", body[i]) >= 0 {
		i++
	}
	return bytes.Count(body[:min(i, len(body))], []byte("\n")) + 1
}
