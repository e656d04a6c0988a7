package serial

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzLines feeds arbitrary bytes, cut at arbitrary places, through the
// splitter and the demo event patterns: no input may crash them, and
// every line stays within max_line and holds no line end.
func FuzzLines(f *testing.F) {
	for _, seed := range []string{
		"DOOR 1 OPEN\r\nAREA 2 ARMED\r\n",
		"GRANT 3 4711\nGRANT 3 99999999999999999999999999\n",
		"\x00\xff\xfe\r\r\n\n",
		strings.Repeat("X", 300) + "\r\nOK\r\n",
		"DOOR 99 OPEN\rDOOR 2 AJAR\rAREA 1 ALARM\r",
	} {
		f.Add([]byte(seed), uint8(3))
	}
	c, err := New(demoOptions("/dev/null"), nil)
	require.NoError(f, err)
	f.Cleanup(func() { c.Close() })
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		sp := newSplitter("\r\n", 64)
		step := int(cut%17) + 1
		pulses := map[string]time.Time{}
		for len(data) > 0 {
			n := min(step, len(data))
			lines, _ := sp.feed(data[:n])
			data = data[n:]
			for _, l := range lines {
				require.LessOrEqual(t, len(l), 64)
				require.NotContains(t, l, "\n")
				require.NotContains(t, l, "\r")
				require.NotEmpty(t, l)
				c.events(l, time.Now(), pulses)
			}
		}
	})
}
