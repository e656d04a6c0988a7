package modbus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOptionsDefaults(t *testing.T) {
	s, err := Options{URL: "tcp://plc.school.local:502"}.validate()
	require.NoError(t, err)
	require.Equal(t, "plc.school.local:502", s.name)
	require.Equal(t, time.Second, s.Timeout)
	require.Equal(t, 2, s.Retries)
	require.Equal(t, time.Second, s.BackoffMin)
	require.Equal(t, 30*time.Second, s.BackoffMax)
	require.Equal(t, 125, s.MaxRegisters)
	require.Equal(t, 2000, s.MaxBits)
	require.True(t, s.readThroughGaps)
	require.Equal(t, 8, s.MaxGap)
	require.True(t, s.writeMultiple)
	require.Equal(t, 10.0, s.WriteRate)
	require.Equal(t, 5*time.Second, s.PollInterval)
	require.Zero(t, s.InterFrameDelay, "no inter-frame delay on TCP")

	s, err = Options{URL: "rtu:///dev/ttyUSB0", ReadThroughGaps: ptrBool(false), WriteMultiple: ptrBool(false), Retries: -1}.validate()
	require.NoError(t, err)
	require.Equal(t, "/dev/ttyUSB0", s.name)
	require.Equal(t, 19200, s.BaudRate)
	require.Equal(t, 8, s.DataBits)
	require.Equal(t, ParityEven, s.Parity)
	require.Equal(t, 1, s.StopBits)
	require.False(t, s.readThroughGaps)
	require.False(t, s.writeMultiple)
	require.Zero(t, s.Retries)
}

func TestInterFrameDelay(t *testing.T) {
	for _, tc := range []struct {
		baud   int
		parity Parity
		stop   int
		want   time.Duration
	}{
		{9600, ParityEven, 1, 4010416},  // 3.5 × 11 bits / 9600
		{9600, ParityNone, 2, 4010416},  // also 11 bits
		{9600, ParityNone, 1, 3645833},  // 10 bits
		{19200, ParityEven, 1, 2005208}, // 19200 itself still counts characters
		{38400, ParityEven, 1, 1750 * time.Microsecond},
		{115200, ParityNone, 1, 1750 * time.Microsecond},
	} {
		s, err := Options{URL: "rtu:///dev/ttyS0", BaudRate: tc.baud, Parity: tc.parity, StopBits: tc.stop}.validate()
		require.NoError(t, err)
		require.Equal(t, tc.want, s.InterFrameDelay, "%d %s %d", tc.baud, tc.parity, tc.stop)
	}
	s, err := Options{URL: "rtu:///dev/ttyS0", InterFrameDelay: 10 * time.Millisecond}.validate()
	require.NoError(t, err)
	require.Equal(t, 10*time.Millisecond, s.InterFrameDelay, "an explicit delay is kept")
}

func TestOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want []string
	}{
		{"no url", Options{}, []string{"url is required"}},
		{"no scheme", Options{URL: "plc:502"}, []string{"has no scheme"}},
		{"unknown scheme", Options{URL: "udp://plc:502"}, []string{`scheme "udp"`}},
		{"no port", Options{URL: "tcp://plc"}, []string{"needs host:port"}},
		{"path", Options{URL: "tcp://plc:502/x"}, []string{"only host and port"}},
		{"relative device", Options{URL: "rtu://ttyUSB0"}, []string{"rtu:///dev/ttyUSB0"}},
		{"serial on tcp", Options{URL: "tcp://plc:502", BaudRate: 9600}, []string{"rtu:// only"}},
		{"bad serial", Options{URL: "rtu:///dev/ttyS0", DataBits: 9, StopBits: 3, Parity: "mark"},
			[]string{"data bits 9", "stop bits 3", `parity "mark"`}},
		{"tls without files", Options{URL: "tcp+tls://plc:802"}, []string{"mutual TLS"}},
		{"tls missing files", Options{URL: "tcp+tls://plc:802", CertificateFile: "/nonexistent/c.pem", PrivateKeyFile: "/nonexistent/k.pem", CAFile: "/nonexistent/ca.pem"},
			[]string{"load client certificate", "load ca file"}},
		{"certificates on tcp", Options{URL: "tcp://plc:502", CAFile: "ca.pem"}, []string{"tcp+tls:// only"}},
		{"limits", Options{URL: "tcp://plc:502", MaxRegisters: 126, MaxBits: 2001, MaxGap: -1},
			[]string{"max_registers 126", "max_bits 2001", "max_gap -1"}},
		{"durations", Options{URL: "tcp://plc:502", Timeout: -1, BackoffMin: time.Minute, BackoffMax: time.Second},
			[]string{"timeout -1ns is negative", "backoff_max 1s is below backoff_min 1m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts, nil)
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}
