package serial

import (
	"bytes"
	"strings"
)

// splitter cuts the received byte stream into lines. A line ends at a
// line feed, a carriage return or the last byte of the terminator, so
// "\r\n", a bare "\n" and a bare "\r" all end a line whatever the
// terminator sent; the empty lines this leaves between "\r" and "\n" are
// dropped. Spaces, tabs and NUL bytes (line noise while an RS-485
// transceiver turns around) are trimmed from both ends. A line longer
// than max bytes is discarded up to its end and counted.
type splitter struct {
	ends []byte
	max  int

	buf []byte
	// skipping is set while the rest of an overlong line is discarded.
	skipping bool
}

func newSplitter(terminator string, max int) *splitter {
	ends := []byte{'\n', '\r'}
	if t := terminator[len(terminator)-1]; t != '\n' && t != '\r' {
		ends = append(ends, t)
	}
	return &splitter{ends: ends, max: max}
}

// feed takes received bytes and returns the complete lines in them and
// the number of overlong lines discarded.
func (s *splitter) feed(p []byte) (lines []string, overlong int) {
	for len(p) > 0 {
		i := bytes.IndexAny(p, string(s.ends))
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !s.skipping {
			if len(s.buf)+len(chunk) > s.max {
				s.skipping = true
				s.buf = s.buf[:0]
				overlong++
			} else {
				s.buf = append(s.buf, chunk...)
			}
		}
		if i < 0 {
			break
		}
		if !s.skipping {
			if line := strings.Trim(string(s.buf), " \t\x00"); line != "" {
				lines = append(lines, line)
			}
		}
		s.buf = s.buf[:0]
		s.skipping = false
		p = p[i+1:]
	}
	return lines, overlong
}

// reset drops a partial line, for a reopened port.
func (s *splitter) reset() {
	s.buf = s.buf[:0]
	s.skipping = false
}
