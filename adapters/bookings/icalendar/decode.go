package icalendar

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	ical "github.com/emersion/go-ical"
)

// lineIndex knows where things are in the raw stream, which go-ical does
// not report: the line of every BEGIN (in document order, which is the
// pre-order of go-ical's component tree) and of every content line.
type lineIndex struct {
	data []byte
	// logical lines: first physical line number (1-based) and the byte
	// range of the whole folded line.
	lines []logicalLine
	// begins[i] is the index into lines of the i-th BEGIN in the stream,
	// ends[i] the line number of its END (filled by structure).
	begins []int
	ends   []int
}

type logicalLine struct {
	num        int // 1-based physical line number of its first line
	start, end int // bytes, end excludes the line break of the last part
}

// text returns the unfolded content line.
func (ix *lineIndex) text(l logicalLine) string {
	raw := ix.data[l.start:l.end]
	if !bytes.Contains(raw, []byte{'\n'}) {
		return string(bytes.TrimSuffix(raw, []byte{'\r'}))
	}
	var b strings.Builder
	for i, part := range bytes.Split(raw, []byte{'\n'}) {
		part = bytes.TrimSuffix(part, []byte{'\r'})
		if i > 0 && len(part) > 0 {
			part = part[1:] // the folding space or tab
		}
		b.Write(part)
	}
	return b.String()
}

// nameOf returns the upper-cased property name of a content line.
func nameOf(line string) string {
	if i := strings.IndexAny(line, ";:"); i >= 0 {
		return strings.ToUpper(line[:i])
	}
	return strings.ToUpper(line)
}

// indexLines splits the stream the way go-ical's decoder does: lines end
// at "\n" (an optional "\r" before it is dropped), a line starting with a
// space or tab continues the previous one, and empty lines are skipped.
func indexLines(data []byte) *lineIndex {
	ix := &lineIndex{data: data, lines: make([]logicalLine, 0, bytes.Count(data, []byte{'\n'})+1)}
	num := 0
	for pos := 0; pos < len(data); {
		num++
		end := bytes.IndexByte(data[pos:], '\n')
		next := len(data)
		if end < 0 {
			end = len(data)
		} else {
			end += pos
			next = end + 1
		}
		first := data[pos]
		empty := end == pos || (end == pos+1 && first == '\r')
		switch {
		case (first == ' ' || first == '\t') && len(ix.lines) > 0:
			ix.lines[len(ix.lines)-1].end = end
		case empty:
		default:
			ix.lines = append(ix.lines, logicalLine{num: num, start: pos, end: end})
			if (first == 'B' || first == 'b') && keyword(data[pos:end]) == "BEGIN" {
				ix.begins = append(ix.begins, len(ix.lines)-1)
			}
		}
		pos = next
	}
	return ix
}

// beginLine is the line number of the i-th BEGIN.
func (ix *lineIndex) beginLine(comp int) int {
	if comp < 0 || comp >= len(ix.begins) {
		return 0
	}
	return ix.lines[ix.begins[comp]].num
}

// propLine finds the line of the k-th property called name directly inside
// the i-th component (not inside its children). It scans only when a
// problem is reported, so parsing pays nothing for line numbers.
func (ix *lineIndex) propLine(comp int, name string, k int) int {
	if comp < 0 || comp >= len(ix.begins) {
		return 0
	}
	depth := 0
	for i := ix.begins[comp] + 1; i < len(ix.lines); i++ {
		n := nameOf(ix.text(ix.lines[i]))
		switch {
		case n == "BEGIN":
			depth++
		case n == "END":
			if depth == 0 {
				return ix.beginLine(comp)
			}
			depth--
		case depth == 0 && n == name:
			if k == 0 {
				return ix.lines[i].num
			}
			k--
		}
	}
	return ix.beginLine(comp)
}

// componentAt returns the innermost component that holds a line, -1 if none.
func (ix *lineIndex) componentAt(line int) int {
	found := -1
	for i := range ix.begins {
		if b := ix.beginLine(i); b < line && line < ix.ends[i] {
			found = i
		} else if b > line {
			break
		}
	}
	return found
}

// ParseError is returned by Parse when the stream as a whole cannot be
// read. Line is 1-based, 0 when no line is to blame (an empty stream).
type ParseError struct {
	Line     int
	Property string // the property or component the line holds, if known
	Err      error
}

// Error renders the error as "line N: PROPERTY: what is wrong".
func (e *ParseError) Error() string {
	switch {
	case e.Line > 0 && e.Property != "":
		return fmt.Sprintf("line %d: %s: %v", e.Line, e.Property, e.Err)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %v", e.Line, e.Err)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

// keyword reports whether a raw content line is BEGIN or END (or neither),
// without allocating: every line of the stream passes through here.
func keyword(raw []byte) string {
	for _, kw := range [...]string{"BEGIN", "END"} {
		if len(raw) > len(kw) && (raw[len(kw)] == ':' || raw[len(kw)] == ';') && strings.EqualFold(string(raw[:len(kw)]), kw) {
			return kw
		}
	}
	return ""
}

// structure checks BEGIN/END nesting, which go-ical reports without a line
// (a truncated stream even looks like a clean io.EOF to it).
func (ix *lineIndex) structure() error {
	type open struct {
		name string
		line int
		comp int
	}
	var stack []open
	ix.ends = make([]int, len(ix.begins))
	comp := 0
	for _, l := range ix.lines {
		kw := keyword(ix.data[l.start:l.end])
		if kw == "" {
			if len(stack) == 0 {
				return &ParseError{Line: l.num, Property: nameOf(ix.text(l)), Err: errors.New("content line outside any VCALENDAR")}
			}
			continue
		}
		text := ix.text(l)
		value := ""
		if i := strings.IndexByte(text, ':'); i >= 0 {
			value = strings.ToUpper(text[i+1:])
		}
		if kw == "BEGIN" {
			if len(stack) == 0 && value != "VCALENDAR" {
				return &ParseError{Line: l.num, Property: "BEGIN", Err: fmt.Errorf("stream holds %q where a VCALENDAR must begin", value)}
			}
			stack = append(stack, open{value, l.num, comp})
			comp++
			continue
		}
		if len(stack) == 0 {
			return &ParseError{Line: l.num, Property: "END", Err: fmt.Errorf("END:%s without BEGIN", value)}
		}
		top := stack[len(stack)-1]
		if top.name != value {
			return &ParseError{Line: l.num, Property: "END", Err: fmt.Errorf("END:%s closes BEGIN:%s of line %d", value, top.name, top.line)}
		}
		ix.ends[top.comp] = l.num
		stack = stack[:len(stack)-1]
	}
	if len(stack) > 0 {
		top := stack[len(stack)-1]
		return &ParseError{Line: top.line, Property: "BEGIN", Err: fmt.Errorf("BEGIN:%s is never closed (truncated stream?)", top.name)}
	}
	return nil
}

// badLine finds the first content line go-ical cannot parse on its own, by
// handing it each line wrapped in a component. Only used after go-ical
// failed, so its cost does not matter.
func (ix *lineIndex) badLine(skip map[int]bool) (logicalLine, error, bool) {
	for _, l := range ix.lines {
		if skip[l.start] || keyword(ix.data[l.start:l.end]) != "" {
			continue
		}
		text := ix.text(l)
		_, err := decodeCalendar(ical.NewDecoder(strings.NewReader("BEGIN:VCALENDAR\r\n" + text + "\r\nEND:VCALENDAR\r\n")))
		if err != nil {
			return l, err, true
		}
	}
	return logicalLine{}, nil, false
}

// decodeCalendar runs go-ical's decoder for one VCALENDAR object. go-ical
// panics on some malformed parameters (an index out of range on
// "DTSTART;TZID=x" without a colon); that must not take the gateway down.
func decodeCalendar(dec *ical.Decoder) (cal *ical.Calendar, err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				cal, err = nil, e
				return
			}
			cal, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return dec.Decode()
}

// blank turns a logical line into empty lines, which go-ical skips. Only
// the decoder's copy is blanked; the index keeps the original text.
func blank(data []byte, l logicalLine) {
	for i := l.start; i < l.end; i++ {
		data[i] = '\n'
	}
}

// maxDroppedLines bounds how many malformed lines Parse drops before it
// gives up on a stream; each drop costs a re-decode.
const maxDroppedLines = 50

// dropped is a malformed content line that Parse left out.
type dropped struct {
	line int
	name string
	err  error
}

// decodeStream decodes every VCALENDAR object of data. A malformed content
// line inside a component is blanked out and reported instead of failing
// the whole stream: one broken event must not lose the rest of a feed. The
// caller decides what a dropped line means for its component.
func decodeStream(data []byte) ([]*ical.Calendar, *lineIndex, []dropped, error) {
	ix := indexLines(data)
	if len(ix.lines) == 0 {
		return nil, ix, nil, &ParseError{Err: errors.New("empty stream: no VCALENDAR object")}
	}
	if err := ix.structure(); err != nil {
		return nil, ix, nil, err
	}
	var drops []dropped
	skip := map[int]bool{}
	for {
		cals, err := decodeAll(data)
		if err == nil {
			return cals, ix, drops, nil
		}
		l, lineErr, found := ix.badLine(skip)
		if !found || len(drops) >= maxDroppedLines {
			return nil, ix, drops, &ParseError{Err: fmt.Errorf("decode iCalendar: %w", err)}
		}
		drops = append(drops, dropped{line: l.num, name: nameOf(ix.text(l)), err: lineErr})
		skip[l.start] = true
		if len(drops) == 1 {
			data = bytes.Clone(data)
		}
		blank(data, l)
	}
}

func decodeAll(data []byte) ([]*ical.Calendar, error) {
	dec := ical.NewDecoder(bytes.NewReader(data))
	var cals []*ical.Calendar
	for {
		cal, err := decodeCalendar(dec)
		if errors.Is(err, io.EOF) {
			return cals, nil
		}
		if err != nil {
			return nil, err
		}
		cals = append(cals, cal)
	}
}
