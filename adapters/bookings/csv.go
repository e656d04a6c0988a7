package bookings

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

var utf8BOM = []byte("\xef\xbb\xbf")

// decodeCSV reads a CSV feed: a header row naming the columns, then one
// booking per row. A bad row is reported with its line number and skipped.
func (s *Source) decodeCSV(body []byte, from, to time.Time) (decoded, error) {
	body = bytes.TrimPrefix(body, utf8BOM)
	r := csv.NewReader(bytes.NewReader(body))
	r.Comma = s.opts.Delimiter
	if r.Comma == 0 {
		r.Comma = detectDelimiter(body)
	}
	r.FieldsPerRecord = -1 // short rows are reported per row, not as a parse error
	r.ReuseRecord = true

	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return decoded{}, errors.New("csv: no header row")
	}
	if err != nil {
		return decoded{}, fmt.Errorf("csv header: %w", err)
	}
	index := map[string]int{}
	for i, name := range header {
		name = strings.ToLower(strings.TrimSpace(name))
		if _, dup := index[name]; !dup {
			index[name] = i
		}
	}
	f := s.opts.Fields
	col := func(name string) int {
		if i, ok := index[strings.ToLower(name)]; ok {
			return i
		}
		return -1
	}
	cID, cRes, cOrg, cStart, cEnd, cStatus := col(f.ID), col(f.Resource), col(f.Organiser), col(f.Start), col(f.End), col(f.Status)
	var missing []string
	for _, c := range []struct {
		name string
		i    int
	}{{f.ID, cID}, {f.Resource, cRes}, {f.Start, cStart}, {f.End, cEnd}} {
		if c.i < 0 {
			missing = append(missing, fmt.Sprintf("%q", c.name))
		}
	}
	if len(missing) > 0 {
		return decoded{}, fmt.Errorf("csv header: no column %s (delimiter %q)", strings.Join(missing, ", "), r.Comma)
	}

	c := newCollector(s.opts.ID, from, to)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if pe, ok := errors.AsType[*csv.ParseError](err); ok {
			c.warn("line %d: %v; skipped", pe.StartLine, pe.Err)
			continue
		}
		if err != nil {
			return decoded{}, fmt.Errorf("csv: %w", err)
		}
		line, _ := r.FieldPos(0)
		get := func(i int) string {
			if i < 0 || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		b, err := s.entry(rawEntry{
			id: get(cID), resource: get(cRes), organiser: get(cOrg),
			start: get(cStart), end: get(cEnd), status: get(cStatus),
		})
		where := fmt.Sprintf("line %d", line)
		if err != nil {
			c.warn("%s: %v; skipped", where, err)
			continue
		}
		c.add(where, b)
	}
	return c.result(), nil
}

// detectDelimiter picks ';' when the header row has more semicolons than
// commas (spreadsheets in Danish and Swedish locales write ';'), else ','.
func detectDelimiter(body []byte) rune {
	header, _, _ := bytes.Cut(body, []byte("\n"))
	if bytes.Count(header, []byte(";")) > bytes.Count(header, []byte(",")) {
		return ';'
	}
	return ','
}
