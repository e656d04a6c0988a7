package opcua

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/gopcua/opcua/ua"
)

// SecurityPolicy is an OPC UA security policy, spelled as in the mapping
// files.
type SecurityPolicy string

// Security policies.
const (
	// PolicyNone sends everything in the clear; only for trusted networks
	// and simulators.
	PolicyNone SecurityPolicy = "none"
	// PolicyBasic256Sha256 signs (and encrypts) with RSA 2048+ and SHA-256.
	PolicyBasic256Sha256 SecurityPolicy = "basic256sha256"
)

// SecurityMode is an OPC UA message security mode, spelled as in the
// mapping files.
type SecurityMode string

// Security modes.
const (
	ModeNone           SecurityMode = "none"
	ModeSign           SecurityMode = "sign"
	ModeSignAndEncrypt SecurityMode = "sign_and_encrypt"
)

// Defaults of the Options durations.
const (
	DefaultRequestTimeout     = 10 * time.Second
	DefaultSessionTimeout     = time.Minute
	DefaultBackoffMin         = time.Second
	DefaultBackoffMax         = time.Minute
	DefaultPublishingInterval = time.Second
	DefaultStaleAfter         = 5 * time.Minute
	// DefaultApplicationURI is the client's application URI when neither
	// Options.ApplicationURI nor the certificate names one.
	DefaultApplicationURI = "urn:bmsgw:client"
)

// Options configure a Client. They are data: New checks them and builds
// the client without connecting.
type Options struct {
	// Name names the server in States and logs, e.g. the connection id.
	// Default: the endpoint URL.
	Name string
	// Endpoint is the server's URL, opc.tcp://host:port[/path]. The client
	// always connects to this address, whatever host names the server
	// advertises in its endpoint descriptions.
	Endpoint string
	// SecurityPolicy: PolicyNone or PolicyBasic256Sha256. Default:
	// PolicyBasic256Sha256.
	SecurityPolicy SecurityPolicy
	// SecurityMode: ModeNone, ModeSign or ModeSignAndEncrypt. Default:
	// ModeSignAndEncrypt, or ModeNone with PolicyNone.
	SecurityMode SecurityMode

	// Username and Password select user name authentication; it needs a
	// security policy other than none, so the password never crosses the
	// network in the clear.
	Username string
	Password string
	// UserCertificateFile and UserPrivateKeyFile (PEM or DER) select X.509
	// user authentication. Without a user name or user certificate the
	// client logs in anonymously.
	UserCertificateFile string
	UserPrivateKeyFile  string

	// CertificateFile and PrivateKeyFile are the client's application
	// instance certificate and RSA key (PEM or DER), required unless the
	// policy is none. EnsureCertificate creates a self-signed pair.
	CertificateFile string
	PrivateKeyFile  string
	// ApplicationURI is the client's application URI; it must be a URI in
	// the certificate's subject alternative names. Default: the
	// certificate's first URI, else DefaultApplicationURI.
	ApplicationURI string

	// TrustDir holds the trusted server certificates (DER or PEM files,
	// *.der, *.cer, *.crt, *.pem), required unless the policy is none. A
	// server certificate that is not there is refused and copied to
	// TrustDir/rejected/ for review.
	TrustDir string
	// TrustOnFirstUse accepts the certificate of an endpoint seen for the
	// first time, saves it to TrustDir as pinned-<host>_<port>.der and pins
	// it: a different certificate from that endpoint later is refused
	// (ErrCertificateChanged) unless it is also in TrustDir.
	TrustOnFirstUse bool

	// RequestTimeout bounds each request, and each step of connecting.
	// Default: DefaultRequestTimeout.
	RequestTimeout time.Duration
	// SessionTimeout is how long the server keeps the session of a client
	// that went away. Default: DefaultSessionTimeout.
	SessionTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait between failed connection
	// attempts; it doubles from min to max, with ±20% jitter. Defaults:
	// DefaultBackoffMin, DefaultBackoffMax.
	BackoffMin time.Duration
	BackoffMax time.Duration
	// PublishingInterval is how often the server sends changes of watched
	// points. Default: DefaultPublishingInterval.
	PublishingInterval time.Duration
	// SamplingInterval is how often the server samples watched points.
	// Default: the publishing interval.
	SamplingInterval time.Duration
	// StaleAfter is how long a watched point may go without the server
	// confirming its value (by a change notification, or by the read the
	// client makes of points quiet for half this time) before it is
	// delivered again with ErrStale. Default: DefaultStaleAfter.
	StaleAfter time.Duration
}

// withDefaults returns the options with defaults applied.
func (o Options) withDefaults() Options {
	if o.Name == "" {
		o.Name = o.Endpoint
	}
	if o.SecurityPolicy == "" {
		o.SecurityPolicy = PolicyBasic256Sha256
	}
	if o.SecurityMode == "" {
		o.SecurityMode = ModeSignAndEncrypt
		if o.SecurityPolicy == PolicyNone {
			o.SecurityMode = ModeNone
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.RequestTimeout, DefaultRequestTimeout)
	def(&o.SessionTimeout, DefaultSessionTimeout)
	def(&o.BackoffMin, DefaultBackoffMin)
	def(&o.BackoffMax, max(DefaultBackoffMax, o.BackoffMin))
	def(&o.PublishingInterval, DefaultPublishingInterval)
	def(&o.SamplingInterval, o.PublishingInterval)
	def(&o.StaleAfter, DefaultStaleAfter)
	return o
}

// validate reports every problem of defaulted options.
func (o Options) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if u, err := url.Parse(o.Endpoint); err != nil || u.Scheme != "opc.tcp" || u.Host == "" {
		bad("endpoint %q is not opc.tcp://host:port", o.Endpoint)
	}
	if _, ok := policyURIs[o.SecurityPolicy]; !ok {
		bad("security policy %q is not none or basic256sha256", o.SecurityPolicy)
	}
	if _, ok := modes[o.SecurityMode]; !ok {
		bad("security mode %q is not none, sign or sign_and_encrypt", o.SecurityMode)
	}
	secure := o.SecurityPolicy != PolicyNone
	switch {
	case secure && o.SecurityMode == ModeNone:
		bad("security policy %s needs security mode sign or sign_and_encrypt", o.SecurityPolicy)
	case !secure && o.SecurityMode != ModeNone:
		bad("security mode %s needs a security policy other than none", o.SecurityMode)
	}
	if o.Password != "" && o.Username == "" {
		bad("a password needs a user name")
	}
	if o.Username != "" && !secure {
		bad("user name authentication needs security policy basic256sha256: the password would travel in the clear")
	}
	if o.Username != "" && o.UserCertificateFile != "" {
		bad("choose user name or user certificate authentication, not both")
	}
	if (o.UserCertificateFile == "") != (o.UserPrivateKeyFile == "") {
		bad("user certificate authentication needs both user_certificate_file and user_private_key_file")
	}
	if (o.CertificateFile == "") != (o.PrivateKeyFile == "") {
		bad("certificate_file and private_key_file go together")
	}
	if secure && o.CertificateFile == "" {
		bad("security policy %s needs certificate_file and private_key_file (EnsureCertificate can create them)", o.SecurityPolicy)
	}
	if secure && o.TrustDir == "" {
		bad("security policy %s needs trust_dir, the folder of trusted server certificates", o.SecurityPolicy)
	}
	if o.TrustOnFirstUse && o.TrustDir == "" {
		bad("trust_on_first_use needs trust_dir to save the pinned certificate in")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"request_timeout", o.RequestTimeout}, {"session_timeout", o.SessionTimeout},
		{"backoff_min", o.BackoffMin}, {"backoff_max", o.BackoffMax},
		{"publishing_interval", o.PublishingInterval}, {"sampling_interval", o.SamplingInterval},
		{"stale_after", o.StaleAfter},
	} {
		if d.v < 0 {
			bad("%s is negative (%s)", d.name, d.v)
		}
	}
	if o.BackoffMax < o.BackoffMin {
		bad("backoff_max %s is below backoff_min %s", o.BackoffMax, o.BackoffMin)
	}
	if o.PublishingInterval > 0 && o.PublishingInterval < 10*time.Millisecond {
		bad("publishing_interval %s is below 10ms", o.PublishingInterval)
	}
	return errors.Join(errs...)
}

// policyURIs maps policies to their URIs.
var policyURIs = map[SecurityPolicy]string{
	PolicyNone:           ua.SecurityPolicyURINone,
	PolicyBasic256Sha256: ua.SecurityPolicyURIBasic256Sha256,
}

// modes maps modes to the protocol's values.
var modes = map[SecurityMode]ua.MessageSecurityMode{
	ModeNone:           ua.MessageSecurityModeNone,
	ModeSign:           ua.MessageSecurityModeSign,
	ModeSignAndEncrypt: ua.MessageSecurityModeSignAndEncrypt,
}

// policyName returns the mapping-file name of a policy URI, or the URI.
func policyName(uri string) string {
	for p, u := range policyURIs {
		if u == uri {
			return string(p)
		}
	}
	return uri
}

// modeName returns the mapping-file name of a security mode.
func modeName(m ua.MessageSecurityMode) string {
	for n, v := range modes {
		if v == m {
			return string(n)
		}
	}
	return m.String()
}
