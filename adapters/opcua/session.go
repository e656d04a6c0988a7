package opcua

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/site"
)

// defaultChunk is the batch size when the server states no operation
// limit.
const defaultChunk = 1000

// errConnectionLost is what a session dies of when gopcua reports that
// its connection went away.
var errConnectionLost = errors.New("connection lost")

// limits are the server's operation limits (ServerCapabilities.
// OperationLimits), defaultChunk where it states none.
type limits struct {
	read, write, monitor int
}

// session is one gopcua client with an activated session. gopcua's own
// reconnection is off: it resends all monitored items in one request
// whatever the server's limits, and gives up on the whole subscription
// when one item is refused. A lost session is replaced by a new one.
type session struct {
	cl     *opcua.Client
	limits limits
	states chan opcua.ConnState

	dead     chan struct{} // closed when the session is unusable
	deadOnce sync.Once
	errMu    sync.Mutex
	err      error

	stop     chan struct{} // closed by close; ends watchState
	stopOnce sync.Once
}

// nodeRef is a point and its parsed node id.
type nodeRef struct {
	p  *site.Point
	id *ua.NodeID
}

// nodeValue is a value to write and, after the write, the server's bad
// status for it.
type nodeValue struct {
	nodeRef
	v      *ua.Variant
	status error
}

// valueResult is what the server returned for one node.
type valueResult struct {
	dv *ua.DataValue
}

// connect opens a session: GetEndpoints, endpoint selection, certificate
// trust, then Connect with the selected endpoint's security.
func (c *Client) connect(ctx context.Context) (*session, error) {
	o := c.opts
	ctx, cancel := context.WithTimeout(ctx, 3*o.RequestTimeout)
	defer cancel()

	eps, err := opcua.GetEndpoints(ctx, o.Endpoint, opcua.DialTimeout(o.RequestTimeout), opcua.RequestTimeout(o.RequestTimeout))
	if err != nil {
		return nil, fmt.Errorf("get endpoints of %s: %w", o.Endpoint, err)
	}
	ep, tokenType, err := c.selectEndpoint(eps)
	if err != nil {
		return nil, err
	}
	if o.SecurityPolicy != PolicyNone {
		if err := c.trust.check(o.Endpoint, ep.ServerCertificate); err != nil {
			return nil, err
		}
	}

	states := make(chan opcua.ConnState, 16)
	opts := []opcua.Option{
		opcua.AutoReconnect(false),
		opcua.StateChangedCh(states),
		opcua.DialTimeout(o.RequestTimeout),
		opcua.RequestTimeout(o.RequestTimeout),
		opcua.SessionTimeout(o.SessionTimeout),
		opcua.SessionName("bmsgw " + o.Name),
		opcua.ApplicationName("bmsgw"),
		opcua.ProductURI("urn:bmsgw"),
	}
	if c.app != nil {
		opts = append(opts, opcua.Certificate(c.app.der), opcua.PrivateKey(c.app.key))
	}
	// After Certificate, which sets the URI from the certificate too.
	opts = append(opts, opcua.ApplicationURI(c.appURI))
	switch {
	case o.Username != "":
		opts = append(opts, opcua.AuthUsername(o.Username, o.Password))
	case c.user != nil:
		opts = append(opts, opcua.AuthCertificate(c.user.der), opcua.AuthPrivateKey(c.user.key))
	default:
		opts = append(opts, opcua.AuthAnonymous())
	}
	opts = append(opts, opcua.SecurityFromEndpoint(ep, tokenType))
	cl, err := opcua.NewClient(o.Endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("configure opc ua client: %w", err)
	}
	if err := safeConnect(ctx, cl); err != nil {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		cl.Close(closeCtx)
		return nil, fmt.Errorf("open session with %s: %w", o.Endpoint, err)
	}
	s := &session{
		cl:     cl,
		states: states,
		dead:   make(chan struct{}),
		stop:   make(chan struct{}),
	}
	if s.limits, err = readLimits(ctx, cl); err != nil {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		defer cancel()
		s.close(closeCtx)
		return nil, fmt.Errorf("read operation limits of %s: %w", o.Endpoint, err)
	}
	return s, nil
}

// safeConnect runs gopcua's Connect, turning a panic into an error: when
// the server's CreateSession signature does not verify, gopcua logs it,
// carries on with a nil session and dereferences it.
func safeConnect(ctx context.Context, cl *opcua.Client) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gopcua failed while opening the session (the server's session signature may not verify): %v", r)
		}
	}()
	return cl.Connect(ctx)
}

// selectEndpoint picks the endpoint with the configured policy and mode
// that accepts the configured authentication, with the highest security
// level, or explains what the server offers instead.
func (c *Client) selectEndpoint(eps []*ua.EndpointDescription) (*ua.EndpointDescription, ua.UserTokenType, error) {
	policy, mode := policyURIs[c.opts.SecurityPolicy], modes[c.opts.SecurityMode]
	tokenType, tokenName := ua.UserTokenTypeAnonymous, "anonymous"
	switch {
	case c.opts.Username != "":
		tokenType, tokenName = ua.UserTokenTypeUserName, "user name"
	case c.user != nil:
		tokenType, tokenName = ua.UserTokenTypeCertificate, "certificate"
	}
	var (
		best     *ua.EndpointDescription
		offered  []string
		matching bool
		tokens   []string
	)
	for _, ep := range eps {
		offered = append(offered, policyName(ep.SecurityPolicyURI)+"/"+modeName(ep.SecurityMode))
		if ep.SecurityPolicyURI != policy || ep.SecurityMode != mode {
			continue
		}
		matching = true
		accepts := false
		for _, t := range ep.UserIdentityTokens {
			tokens = append(tokens, tokenTypeName(t.TokenType))
			accepts = accepts || t.TokenType == tokenType
		}
		if accepts && (best == nil || ep.SecurityLevel > best.SecurityLevel) {
			best = ep
		}
	}
	slices.Sort(offered)
	slices.Sort(tokens)
	switch {
	case best != nil:
		return best, tokenType, nil
	case !matching:
		return nil, 0, fmt.Errorf("%w: %s offers no endpoint with security %s/%s; it offers %s",
			ErrNoEndpoint, c.opts.Endpoint, c.opts.SecurityPolicy, c.opts.SecurityMode, strings.Join(slices.Compact(offered), ", "))
	}
	return nil, 0, fmt.Errorf("%w: the %s/%s endpoint of %s does not accept %s authentication; it accepts %s",
		ErrNoEndpoint, c.opts.SecurityPolicy, c.opts.SecurityMode, c.opts.Endpoint, tokenName, strings.Join(slices.Compact(tokens), ", "))
}

// tokenTypeName names a user token type for people.
func tokenTypeName(t ua.UserTokenType) string {
	switch t {
	case ua.UserTokenTypeAnonymous:
		return "anonymous"
	case ua.UserTokenTypeUserName:
		return "user name"
	case ua.UserTokenTypeCertificate:
		return "certificate"
	case ua.UserTokenTypeIssuedToken:
		return "issued token"
	}
	return t.String()
}

// readLimits reads the server's operation limits; a limit the server
// does not state (or states as 0, no limit) becomes defaultChunk.
func readLimits(ctx context.Context, cl *opcua.Client) (limits, error) {
	ids := []uint32{
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
		id.Server_ServerCapabilities_OperationLimits_MaxNodesPerWrite,
		id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall,
	}
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
	for _, i := range ids {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.NewNumericNodeID(0, i), AttributeID: ua.AttributeIDValue})
	}
	res, err := cl.Read(ctx, req)
	if err != nil {
		return limits{}, err
	}
	get := func(i int) int {
		if i >= len(res.Results) || res.Results[i] == nil || !good(res.Results[i].Status) || res.Results[i].Value == nil {
			return defaultChunk
		}
		n, ok := res.Results[i].Value.Value().(uint32)
		if !ok || n == 0 {
			return defaultChunk
		}
		return int(min(n, defaultChunk))
	}
	return limits{read: get(0), write: get(1), monitor: get(2)}, nil
}

// read reads the values of the nodes, chunked by MaxNodesPerRead.
func (s *session) read(ctx context.Context, nodes []*nodeRef) ([]*valueResult, error) {
	out := make([]*valueResult, 0, len(nodes))
	for chunk := range slices.Chunk(nodes, s.limits.read) {
		req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
		for _, n := range chunk {
			req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: n.id, AttributeID: ua.AttributeIDValue})
		}
		res, err := s.cl.Read(ctx, req)
		if err != nil {
			return nil, err
		}
		if len(res.Results) != len(chunk) {
			return nil, fmt.Errorf("server answered %d results for %d nodes", len(res.Results), len(chunk))
		}
		for _, dv := range res.Results {
			out = append(out, &valueResult{dv: dv})
		}
	}
	return out, nil
}

// write writes the values, chunked by MaxNodesPerWrite, recording each
// node's bad status in vals. It returns how many values it got answers
// for: on an error, the ones after that were not (or not surely) written.
func (s *session) write(ctx context.Context, vals []*nodeValue) (int, error) {
	done := 0
	for chunk := range slices.Chunk(vals, s.limits.write) {
		req := &ua.WriteRequest{}
		for _, v := range chunk {
			req.NodesToWrite = append(req.NodesToWrite, &ua.WriteValue{
				NodeID:      v.id,
				AttributeID: ua.AttributeIDValue,
				// No timestamps: many servers refuse writes that set them.
				Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v.v},
			})
		}
		res, err := s.cl.Write(ctx, req)
		if err != nil {
			return done, err
		}
		if len(res.Results) != len(chunk) {
			return done, fmt.Errorf("server answered %d results for %d writes", len(res.Results), len(chunk))
		}
		for i, code := range res.Results {
			if !good(code) {
				chunk[i].status = &StatusError{NodeID: chunk[i].id.String(), Code: code}
			}
		}
		done += len(chunk)
	}
	return done, nil
}

// watchState turns gopcua's connection state changes into the session's
// death: with its reconnection off, gopcua reports Disconnected when the
// connection drops, and also after any request that got a bad service
// result, after which it stops publishing; either way the session must be
// replaced.
func (s *session) watchState() {
	for {
		select {
		case st := <-s.states:
			if st == opcua.Disconnected || st == opcua.Closed {
				s.kill(errConnectionLost)
			}
		case <-s.stop:
			return
		}
	}
}

// kill marks the session unusable.
func (s *session) kill(err error) {
	s.deadOnce.Do(func() {
		s.errMu.Lock()
		s.err = err
		s.errMu.Unlock()
		close(s.dead)
	})
}

// alive reports whether the session is usable.
func (s *session) alive() bool {
	select {
	case <-s.dead:
		return false
	default:
		return true
	}
}

// cause returns why the session died.
func (s *session) cause() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err == nil {
		return errConnectionLost
	}
	return s.err
}

// close stops the state watcher and closes the gopcua client.
func (s *session) close(ctx context.Context) {
	s.kill(ErrClosed)
	s.stopOnce.Do(func() { close(s.stop) })
	s.cl.Close(ctx)
}
