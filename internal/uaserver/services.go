package uaserver

import (
	"math"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"

	"github.com/bmsgw/bmsgw/internal/gopcuaserver"
)

// registerHandlers installs the gateway's own service handlers before
// Start (gopcua keeps a handler that is already registered). Each
// replaces one of gopcua's that is unsafe (the subscription ones come
// from gopcuaserver, shared with opcuasim):
//
//   - Write: gopcua dereferences a nil namespace for a namespace index
//     that does not exist (an anonymous client crashes the server), and
//     stores any value of any type. Ours checks namespace, node, access,
//     peer and type, and hands the write to the gateway.
//   - Read: gopcua's answers a missing namespace badly; ours answers
//     BadNodeIdUnknown.
//   - CreateMonitoredItems: gopcua answers Good for nodes that do not
//     exist and starts a goroutine per item that nobody waits for.
//   - GetEndpoints: only the public endpoint, not gopcua's internal one.
//   - CreateSubscription: gopcua numbers subscriptions len(subs)+1, which
//     silently replaces a live one after a deletion; refused instead.
//   - DeleteMonitoredItems, SetMonitoringMode, DeleteSubscriptions:
//     gopcua dereferences nil for an unknown item id or session.
func (ch *child) registerHandlers() {
	srv := ch.srv
	srv.RegisterHandler(id.GetEndpointsRequest_Encoding_DefaultBinary, ch.getEndpoints)
	srv.RegisterHandler(id.ReadRequest_Encoding_DefaultBinary, ch.read)
	if !ch.opts.stockWrite {
		srv.RegisterHandler(id.WriteRequest_Encoding_DefaultBinary, ch.write)
	}
	ch.subs = ch.subscriptions()
	ch.subs.Register()
}

func (ch *child) getEndpoints(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.GetEndpointsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	var eps []*ua.EndpointDescription
	for _, ep := range ch.srv.Endpoints() {
		if ep.EndpointURL == ch.public {
			eps = append(eps, ep)
		}
	}
	return &ua.GetEndpointsResponse{ResponseHeader: gopcuaserver.ResponseHeader(req.RequestHeader, ua.StatusOK), Endpoints: eps}, nil
}

func (ch *child) read(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.ReadRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if len(req.NodesToRead) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	results := make([]*ua.DataValue, len(req.NodesToRead))
	for i, rv := range req.NodesToRead {
		results[i] = gopcuaserver.BadValue(ua.StatusBadNodeIDUnknown)
		if rv == nil || rv.NodeID == nil {
			continue
		}
		if ns, err := ch.srv.Namespace(int(rv.NodeID.Namespace())); err == nil {
			results[i] = ns.Attribute(rv.NodeID, rv.AttributeID)
		}
	}
	return &ua.ReadResponse{
		ResponseHeader:  gopcuaserver.ResponseHeader(req.RequestHeader, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// write checks every value, hands the ones that pass to the gateway and
// answers once the gateway has decided (or WriteTimeout passed). gopcua
// runs all requests in one loop, so the answer is sent from a goroutine
// and the handler returns no response: a slow gateway never stalls other
// clients.
func (ch *child) write(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	req, ok := r.(*ua.WriteRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if len(req.NodesToWrite) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	peer := ""
	if sc != nil && sc.RemoteAddr() != nil {
		peer, _ = ch.proxy.Peer(sc.RemoteAddr().String())
	}
	results := make([]ua.StatusCode, len(req.NodesToWrite))
	type forwarded struct {
		i    int
		done chan *wireResult
		id   uint64
	}
	var fw []forwarded
	for i, wv := range req.NodesToWrite {
		w, status := ch.checkWrite(wv, peer)
		results[i] = status
		if w == nil {
			ch.logger.Info("opc ua write refused", "peer", peer, "node", nodeIDString(wv), "status", status.Error())
			continue
		}
		done, id := ch.forward(w)
		if done == nil {
			results[i] = ua.StatusBadCommunicationError
			continue
		}
		fw = append(fw, forwarded{i, done, id})
	}
	respond := func() {
		if len(fw) > 0 {
			timer := time.NewTimer(ch.cfg.WriteTimeout)
			defer timer.Stop()
			for _, f := range fw {
				select {
				case res := <-f.done:
					results[f.i] = ua.StatusCode(res.Status)
				case <-timer.C:
					results[f.i] = ua.StatusBadTimeout
				case <-ch.done:
					return
				}
			}
			ch.wmu.Lock()
			for _, f := range fw {
				delete(ch.waiting, f.id)
			}
			ch.wmu.Unlock()
		}
		resp := &ua.WriteResponse{
			ResponseHeader:  gopcuaserver.ResponseHeader(req.RequestHeader, ua.StatusOK),
			Results:         results,
			DiagnosticInfos: []*ua.DiagnosticInfo{},
		}
		if err := sc.SendResponseWithContext(ch.life, reqID, resp); err != nil {
			ch.logger.Debug("opc ua write response not sent", "err", err)
		}
	}
	if len(fw) == 0 {
		respond()
		return nil, nil
	}
	ch.spawn(respond)
	return nil, nil
}

// checkWrite returns the write to forward, or nil and the status that
// refuses it.
func (ch *child) checkWrite(wv *ua.WriteValue, peer string) (*wireWrite, ua.StatusCode) {
	if wv == nil || wv.NodeID == nil {
		return nil, ua.StatusBadNodeIDInvalid
	}
	if wv.NodeID.Namespace() != ch.ns.Index {
		// Namespace 0 and any index we do not serve, including ones
		// that do not exist (gopcua's handler crashes on those).
		if wv.NodeID.Namespace() == 0 {
			return nil, ua.StatusBadNotWritable
		}
		return nil, ua.StatusBadNodeIDUnknown
	}
	n := ch.ns.lookup(wv.NodeID)
	switch {
	case n == nil:
		return nil, ua.StatusBadNodeIDUnknown
	case wv.AttributeID != ua.AttributeIDValue:
		return nil, ua.StatusBadNotWritable
	case !n.writable:
		return nil, ua.StatusBadNotWritable
	case !peerAllowed(peer, ch.peers):
		return nil, ua.StatusBadUserAccessDenied
	case wv.Value == nil || wv.Value.Value == nil:
		return nil, ua.StatusBadTypeMismatch
	}
	val := wv.Value.Value
	if val.Type() == ua.TypeIDNull {
		// A null value releases the override.
		return &wireWrite{Site: n.site, Point: n.point, Clear: true, Peer: peer}, ua.StatusOK
	}
	if val.Has(ua.VariantArrayValues) || val.Type() != n.typ {
		return nil, ua.StatusBadTypeMismatch
	}
	var f float64
	switch x := val.Value().(type) {
	case bool:
		if x {
			f = 1
		}
	case float64:
		f = x
	default:
		return nil, ua.StatusBadTypeMismatch
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, ua.StatusBadOutOfRange
	}
	return &wireWrite{Site: n.site, Point: n.point, Value: f, Peer: peer}, ua.StatusOK
}

// forward sends a write to the gateway and returns the channel its
// result arrives on, or nil when the gateway cannot be told.
func (ch *child) forward(w *wireWrite) (chan *wireResult, uint64) {
	done := make(chan *wireResult, 1)
	ch.wmu.Lock()
	ch.nextID++
	w.ID = ch.nextID
	ch.waiting[w.ID] = done
	ch.wmu.Unlock()
	if err := ch.gw.send(message{Write: w}, sendTimeout); err != nil {
		ch.wmu.Lock()
		delete(ch.waiting, w.ID)
		ch.wmu.Unlock()
		return nil, 0
	}
	return done, w.ID
}

// writeDone delivers the gateway's answer to a write.
func (ch *child) writeDone(res *wireResult) {
	ch.wmu.Lock()
	done := ch.waiting[res.ID]
	delete(ch.waiting, res.ID)
	ch.wmu.Unlock()
	if done != nil {
		done <- res
	}
}

func nodeIDString(wv *ua.WriteValue) string {
	if wv == nil || wv.NodeID == nil {
		return ""
	}
	return wv.NodeID.String()
}

// subscriptions serves subscriptions and monitored items on the served
// nodes (see gopcuaserver); folders cannot be monitored.
func (ch *child) subscriptions() *gopcuaserver.Service {
	return &gopcuaserver.Service{
		Srv: ch.srv,
		Lookup: func(id *ua.NodeID) (string, *ua.DataValue, bool) {
			n := ch.ns.lookup(id)
			if n == nil || n.folder {
				return "", nil, false
			}
			return id.String(), n.dataValue(), true
		},
		Spawn: ch.spawn,
		Done:  ch.done,
		Warn:  ch.logger.Warn,
	}
}

// notify sends the current value of each node id (or BadNodeIdUnknown
// once it is gone) to the items monitoring it.
func (ch *child) notify(ids []string) {
	if ch.subs == nil || len(ids) == 0 {
		return
	}
	t := ch.ns.current()
	var list []gopcuaserver.Pending
	for _, sid := range ids {
		dv := gopcuaserver.BadValue(ua.StatusBadNodeIDUnknown)
		if n := t.nodes[sid]; n != nil && !n.folder {
			dv = n.dataValue()
		}
		list = append(list, ch.subs.Notifications(ch.ns.nodeID(sid).String(), dv)...)
	}
	ch.subs.Deliver(list)
}
