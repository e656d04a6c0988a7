package opcua

import (
	"context"
	"errors"
	"fmt"

	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/control"
)

// Errors of the adapter. Per-node failures are *StatusError values.
var (
	// ErrStale marks a watched point whose value the server has not
	// confirmed for longer than Options.StaleAfter: the Reading carries the
	// last value and its time, and consumers should treat it as unknown.
	// It is control.ErrStale, so the control engine recognises it.
	ErrStale = control.ErrStale
	// ErrUntrustedCertificate is returned when the server's certificate is
	// not in the trust folder (or is outside its validity period).
	ErrUntrustedCertificate = errors.New("server certificate is not trusted")
	// ErrCertificateChanged is returned when an endpoint presents another
	// certificate than the one pinned for it on first use.
	ErrCertificateChanged = errors.New("server certificate changed")
	// ErrNoEndpoint is returned when the server offers no endpoint with
	// the configured security policy, mode and authentication.
	ErrNoEndpoint = errors.New("no matching endpoint")
	// ErrNotConnected is returned while the client waits to retry a failed
	// connection; it wraps the error of the last attempt.
	ErrNotConnected = errors.New("not connected")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("client closed")
	// ErrInvalidNode matches (with errors.Is) a StatusError saying that the
	// node id is not valid on the server: unknown, malformed, or without a
	// value attribute.
	ErrInvalidNode = errors.New("node id not valid on the server")
	// ErrUnexpectedType is returned for a value whose OPC UA type cannot
	// be turned into a number.
	ErrUnexpectedType = errors.New("unexpected value type")
)

// StatusError is a bad status the server gave for one node.
type StatusError struct {
	NodeID string
	Code   ua.StatusCode
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("node %s: %s", e.NodeID, e.Code.Error())
}

// Unwrap returns the status code, so errors.Is(err, ua.StatusBadTypeMismatch)
// works.
func (e *StatusError) Unwrap() error { return e.Code }

// Is reports whether the status means an invalid node id (ErrInvalidNode).
func (e *StatusError) Is(target error) bool {
	return target == ErrInvalidNode && invalidNodeStatus(e.Code)
}

// invalidNodeStatus reports whether a status says the node id is wrong
// rather than the value unavailable.
func invalidNodeStatus(code ua.StatusCode) bool {
	switch code {
	case ua.StatusBadNodeIDUnknown, ua.StatusBadNodeIDInvalid, ua.StatusBadNodeIDRejected,
		ua.StatusBadAttributeIDInvalid, ua.StatusBadNodeNotInView, ua.StatusBadNodeClassInvalid:
		return true
	}
	return false
}

// good reports whether a status has severity Good.
func good(code ua.StatusCode) bool { return uint32(code)>>30 == 0 }

// connectionStatus lists the service results that mean the connection or
// session is gone, so the session must be rebuilt.
var connectionStatus = map[ua.StatusCode]bool{
	ua.StatusBadTimeout:                   true,
	ua.StatusBadRequestTimeout:            true,
	ua.StatusBadServerNotConnected:        true,
	ua.StatusBadSessionIDInvalid:          true,
	ua.StatusBadSessionClosed:             true,
	ua.StatusBadSessionNotActivated:       true,
	ua.StatusBadSecureChannelIDInvalid:    true,
	ua.StatusBadSecureChannelClosed:       true,
	ua.StatusBadSecureChannelTokenUnknown: true,
	ua.StatusBadConnectionClosed:          true,
	ua.StatusBadConnectionRejected:        true,
	ua.StatusBadCommunicationError:        true,
	ua.StatusBadNotConnected:              true,
	ua.StatusBadDisconnect:                true,
	ua.StatusBadShutdown:                  true,
	ua.StatusBadServerHalted:              true,
	ua.StatusBadTCPInternalError:          true,
	ua.StatusBadDecodingError:             true,
	ua.StatusBadSecurityChecksFailed:      true,
}

// connectionError reports whether err from a service call means the
// session is unusable (rather than one request being refused): transport
// errors, timeouts and the connection-related status codes. A cancelled
// caller context is not the server's fault.
func connectionError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var code ua.StatusCode
	if errors.As(err, &code) {
		return connectionStatus[code]
	}
	return true
}

// needsPerson reports whether a connection error is one that retrying
// will not cure: trust, endpoint and authentication problems.
func needsPerson(err error) bool {
	for _, target := range []error{
		ErrUntrustedCertificate, ErrCertificateChanged, ErrNoEndpoint,
		ua.StatusBadUserAccessDenied, ua.StatusBadIdentityTokenRejected, ua.StatusBadIdentityTokenInvalid,
		ua.StatusBadUserSignatureInvalid, ua.StatusBadCertificateUntrusted, ua.StatusBadCertificateInvalid,
		ua.StatusBadCertificateURIInvalid, ua.StatusBadCertificateTimeInvalid, ua.StatusBadCertificateUseNotAllowed,
		ua.StatusBadSecurityPolicyRejected, ua.StatusBadSecurityChecksFailed,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
