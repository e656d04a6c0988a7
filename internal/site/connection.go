package site

import (
	"log/slog"
	"time"
)

// Connection is a link to controllers: an OPC UA server or a Modbus
// device, gateway or serial bus, or a line-based serial device. Exactly
// one of OPCUA, Modbus and Serial is set.
type Connection struct {
	ID     string
	OPCUA  *OPCUAConnection
	Modbus *ModbusConnection
	Serial *SerialConnection
	// Heartbeat is a point written periodically with a counter, or nil.
	Heartbeat *Point
	// HeartbeatPeriod is how often it is written.
	HeartbeatPeriod time.Duration
}

// OPCUAConnection is an OPC UA client connection.
type OPCUAConnection struct {
	Endpoint        string
	SecurityPolicy  string // none or basic256sha256
	SecurityMode    string // none, sign or sign_and_encrypt
	Username        string
	Password        Secret
	CertificateFile string
	PrivateKeyFile  string
	// TrustDir holds trusted server certificates; "" means the gateway's
	// default under its state directory.
	WriteRate                               float64 // requests per second; 0: default
	ApplicationURI                          string
	UserCertificateFile, UserPrivateKeyFile string
	BackoffMin, BackoffMax                  time.Duration
	TrustDir                                string
	TrustOnFirstUse                         bool
	RequestTimeout                          time.Duration
	PublishingInterval                      time.Duration
	StaleAfter                              time.Duration
}

// ModbusConnection is a Modbus client connection.
type ModbusConnection struct {
	URL    string // tcp://, tcp+tls:// or rtu://
	UnitID uint8
	// Serial settings, for rtu://.
	BaudRate, DataBits, StopBits int
	Parity                       string // none, even or odd
	// TLS files, for tcp+tls://.
	CertificateFile, PrivateKeyFile, CAFile string
	// Timing and device limits; zero values mean the adapter's defaults.
	Timeout, BackoffMin, BackoffMax, InterFrameDelay, PollInterval time.Duration
	Retries                                                        *int
	MaxRegisters, MaxBits                                          int
	ReadThroughGaps, WriteMultiple                                 *bool
	MaxGap                                                         *int
	WriteRate                                                      float64
}

// Secret is a credential that never prints itself.
type Secret string

// String hides the secret.
func (Secret) String() string { return "[redacted]" }

// GoString hides the secret from %#v.
func (Secret) GoString() string { return "[redacted]" }

// LogValue hides the secret from slog.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Reveal returns the secret itself, for the adapter that uses it.
func (s Secret) Reveal() string { return string(s) }
