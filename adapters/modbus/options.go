package modbus

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
)

// Parity is the parity of a serial line.
type Parity string

// Parities.
const (
	ParityNone Parity = "none"
	ParityEven Parity = "even"
	ParityOdd  Parity = "odd"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultBaudRate     = 19200
	DefaultDataBits     = 8
	DefaultParity       = ParityEven
	DefaultStopBits     = 1
	DefaultTimeout      = time.Second
	DefaultRetries      = 2
	DefaultBackoffMin   = time.Second
	DefaultBackoffMax   = 30 * time.Second
	DefaultMaxGap       = 8
	DefaultWriteRate    = 10
	DefaultPollInterval = 5 * time.Second

	// MaxRegistersLimit is the protocol's limit of registers in one read
	// (FC3, FC4): 125.
	MaxRegistersLimit = 125
	// MaxBitsLimit is the protocol's limit of coils or discrete inputs in
	// one read (FC1, FC2): 2000.
	MaxBitsLimit = 2000
	// maxWriteRegisters and maxWriteBits are the protocol's limits of one
	// FC16 and FC15 request.
	maxWriteRegisters = 123
	maxWriteBits      = 1968
)

// Options configure a Client. Options is data: New validates it and builds
// the runtime Client. Zero fields take the defaults shown.
type Options struct {
	// URL is the link: tcp://host:port, tcp+tls://host:port (Modbus/TCP
	// Security, mutual TLS) or rtu:///dev/ttyUSB0 (RS-485/RS-232).
	// Required. One Client owns one connection to it, shared by every
	// unit behind it.
	URL string

	// BaudRate of an rtu:// line in bit/s. Default 19200.
	BaudRate int
	// DataBits of an rtu:// line, 7 or 8. Default 8.
	DataBits int
	// Parity of an rtu:// line: none, even or odd. Default even (the
	// Modbus serial line default).
	Parity Parity
	// StopBits of an rtu:// line, 1 or 2. Default 1.
	StopBits int

	// CertificateFile is the client certificate (PEM) for tcp+tls://.
	// Required there, with PrivateKeyFile and CAFile.
	CertificateFile string
	// PrivateKeyFile is the private key (PEM) of CertificateFile.
	PrivateKeyFile string
	// CAFile holds the CA certificates (PEM) the server's certificate must
	// chain to.
	CAFile string

	// UnitID replaces unit id 0 in point addresses (on a serial line unit
	// 0 is the broadcast address, which never answers). Default 0: unit 0
	// is sent as is, for Modbus/TCP devices that ignore the unit id.
	UnitID uint8

	// Timeout bounds one request: sending it and waiting for the reply.
	// Default 1s.
	Timeout time.Duration
	// Retries is how often a request is repeated after a busy reply, a
	// timeout, a bad reply or a broken link, before its error is returned.
	// A unit that fails Retries+1 times in a row is marked down. Default 2;
	// negative means no retries.
	Retries int
	// BackoffMin is how long a unit that is down (or a link that cannot
	// be opened) is left alone before it is probed again; the wait doubles
	// on each failed probe up to BackoffMax. Requests for a unit that is
	// down fail at once with ErrUnitDown. Default 1s.
	BackoffMin time.Duration
	// BackoffMax caps the wait between probes of a unit that is down.
	// Default 30s.
	BackoffMax time.Duration
	// InterFrameDelay is the silence kept on an rtu:// line between the
	// end of one frame and the next request. Default: 3.5 character
	// times at BaudRate, and 1.75 ms above 19200 bit/s (Modbus over
	// serial line, 2.5.1.1).
	InterFrameDelay time.Duration

	// MaxRegisters is the most registers the devices accept in one read
	// request, 1-125. Default 125. A value is never split across requests:
	// a point wider than MaxRegisters is read on its own.
	MaxRegisters int
	// MaxBits is the most coils or discrete inputs the devices accept in
	// one read request, 1-2000. Default 2000.
	MaxBits int
	// ReadThroughGaps merges reads of points separated by unused
	// addresses into one request when the gap is at most MaxGap. Nil means
	// true. Devices that answer an illegal data address exception for
	// unused registers still work: such a request is repeated without its
	// gaps.
	ReadThroughGaps *bool
	// MaxGap is the most unused registers read through to merge two
	// reads, and MaxGap×16 the most unused coils or discrete inputs.
	// Default 8.
	MaxGap int
	// WriteMultiple writes neighbouring registers with one FC16 request
	// and neighbouring coils with one FC15 request. Nil means true; false
	// sends one request per point (FC6 or FC5, FC16 for values wider than
	// one register), for devices without FC15 and FC16.
	WriteMultiple *bool
	// WriteRate is the most write requests per second sent to one unit;
	// requests beyond it wait. Default 10; negative means no limit.
	WriteRate float64
	// PollInterval is how often Watch reads its points. Default 5s.
	PollInterval time.Duration
}

// link kinds.
const (
	kindTCP = "tcp"
	kindTLS = "tcp+tls"
	kindRTU = "rtu"
)

// settings are validated Options with the defaults applied.
type settings struct {
	Options
	kind string
	// name is host:port or the serial device, for States and logs.
	name            string
	readThroughGaps bool
	writeMultiple   bool
	tlsCert         *tls.Certificate
	tlsCAs          *x509.CertPool
}

// limits returns the planner's view of the settings.
func (s *settings) limits() Limits {
	return Limits{
		MaxRegisters:    s.MaxRegisters,
		MaxBits:         s.MaxBits,
		ReadThroughGaps: s.readThroughGaps,
		MaxGap:          s.MaxGap,
		WriteMultiple:   s.writeMultiple,
		DefaultUnit:     s.UnitID,
	}
}

// validate applies the defaults and checks the options, reporting every
// problem at once.
func (o Options) validate() (*settings, error) {
	s := &settings{Options: o}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	kind, rest, ok := strings.Cut(o.URL, "://")
	switch {
	case o.URL == "":
		bad("url is required")
	case !ok:
		bad("url %q has no scheme; use tcp://, tcp+tls:// or rtu://", o.URL)
	case kind == kindTCP || kind == kindTLS:
		u, err := url.Parse(o.URL)
		if err != nil {
			bad("url %q: %w", o.URL, err)
			break
		}
		if u.Path != "" || u.RawQuery != "" || u.User != nil {
			bad("url %q: only host and port are allowed", o.URL)
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			bad("url %q needs host:port", o.URL)
		}
		s.name = u.Host
	case kind == kindRTU:
		if !strings.HasPrefix(rest, "/") {
			bad("url %q: give the serial device as rtu:///dev/ttyUSB0", o.URL)
		}
		s.name = rest
	default:
		bad("url %q: scheme %q is not tcp, tcp+tls or rtu", o.URL, kind)
	}
	s.kind = kind

	if kind == kindRTU {
		s.BaudRate = orDefault(s.BaudRate, DefaultBaudRate)
		s.DataBits = orDefault(s.DataBits, DefaultDataBits)
		s.StopBits = orDefault(s.StopBits, DefaultStopBits)
		if s.Parity == "" {
			s.Parity = DefaultParity
		}
		if s.BaudRate < 0 {
			bad("baud rate %d is negative", s.BaudRate)
		}
		if s.DataBits != 7 && s.DataBits != 8 {
			bad("data bits %d: use 7 or 8", s.DataBits)
		}
		if s.StopBits != 1 && s.StopBits != 2 {
			bad("stop bits %d: use 1 or 2", s.StopBits)
		}
		switch s.Parity {
		case ParityNone, ParityEven, ParityOdd:
		default:
			bad("parity %q: use none, even or odd", s.Parity)
		}
		if s.InterFrameDelay == 0 && s.BaudRate > 0 {
			s.InterFrameDelay = interFrameDelay(s.BaudRate, s.DataBits, s.Parity, s.StopBits)
		}
	}
	if kind != kindRTU && (o.BaudRate != 0 || o.DataBits != 0 || o.Parity != "" || o.StopBits != 0) {
		bad("serial settings apply to rtu:// only")
	}

	tlsFiles := o.CertificateFile != "" || o.PrivateKeyFile != "" || o.CAFile != ""
	switch {
	case kind == kindTLS && (o.CertificateFile == "" || o.PrivateKeyFile == "" || o.CAFile == ""):
		bad("tcp+tls needs certificate_file, private_key_file and ca_file (Modbus/TCP Security is mutual TLS)")
	case kind == kindTLS:
		cert, err := tls.LoadX509KeyPair(o.CertificateFile, o.PrivateKeyFile)
		if err != nil {
			bad("load client certificate: %w", err)
		} else {
			s.tlsCert = &cert
		}
		pool, err := loadCAs(o.CAFile)
		if err != nil {
			bad("load ca file: %w", err)
		}
		s.tlsCAs = pool
	case tlsFiles && ok:
		bad("certificate files apply to tcp+tls:// only")
	}

	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Retries == 0 {
		s.Retries = DefaultRetries
	}
	if s.Retries < 0 {
		s.Retries = 0
	}
	if s.BackoffMin == 0 {
		s.BackoffMin = DefaultBackoffMin
	}
	if s.BackoffMax == 0 {
		s.BackoffMax = max(DefaultBackoffMax, s.BackoffMin)
	}
	s.MaxRegisters = orDefault(s.MaxRegisters, MaxRegistersLimit)
	s.MaxBits = orDefault(s.MaxBits, MaxBitsLimit)
	s.MaxGap = orDefault(s.MaxGap, DefaultMaxGap)
	if s.WriteRate == 0 {
		s.WriteRate = DefaultWriteRate
	}
	if s.PollInterval == 0 {
		s.PollInterval = DefaultPollInterval
	}
	s.readThroughGaps = o.ReadThroughGaps == nil || *o.ReadThroughGaps
	s.writeMultiple = o.WriteMultiple == nil || *o.WriteMultiple

	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", s.Timeout}, {"backoff_min", s.BackoffMin}, {"backoff_max", s.BackoffMax}, {"inter_frame_delay", s.InterFrameDelay}, {"poll_interval", s.PollInterval}} {
		if d.v < 0 {
			bad("%s %s is negative", d.name, d.v)
		}
	}
	if s.BackoffMax < s.BackoffMin {
		bad("backoff_max %s is below backoff_min %s", s.BackoffMax, s.BackoffMin)
	}
	if s.MaxRegisters < 1 || s.MaxRegisters > MaxRegistersLimit {
		bad("max_registers %d is not between 1 and %d", s.MaxRegisters, MaxRegistersLimit)
	}
	if s.MaxBits < 1 || s.MaxBits > MaxBitsLimit {
		bad("max_bits %d is not between 1 and %d", s.MaxBits, MaxBitsLimit)
	}
	if s.MaxGap < 0 {
		bad("max_gap %d is negative", s.MaxGap)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("modbus options: %w", err)
	}
	return s, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// interFrameDelay is 3.5 character times at the baud rate, and the fixed
// 1.75 ms the spec gives above 19200 bit/s.
func interFrameDelay(baud, dataBits int, parity Parity, stopBits int) time.Duration {
	if baud > 19200 {
		return 1750 * time.Microsecond
	}
	bits := 1 + dataBits + stopBits
	if parity != ParityNone {
		bits++
	}
	return time.Duration(float64(time.Second) * 3.5 * float64(bits) / float64(baud))
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
