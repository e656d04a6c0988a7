package opcuasim

import (
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"

	"github.com/bmsgw/bmsgw/internal/gopcuaserver"
)

// registerHandlers installs the simulator's own service handlers. gopcua
// registers its defaults in Start and keeps a handler that is already
// there, so these win. Each replaces a gopcua handler that is unsafe or
// too loose for a test peer:
//
//   - Write: gopcua dereferences a nil namespace for a node id in a
//     namespace that does not exist (the server crashes), and stores any
//     value whatever its type.
//   - Read: to count requests and enforce MaxNodesPerRead.
//   - CreateMonitoredItems: gopcua answers Good for nodes that do not exist
//     and starts one goroutine per item that nobody waits for.
//   - GetEndpoints: to advertise only the public endpoint, not the
//     internal one gopcua listens on.
//   - CreateSubscription: gopcua numbers subscriptions len(subs)+1, which
//     silently replaces a live subscription after one was deleted; such a
//     request is refused instead.
//   - DeleteMonitoredItems, SetMonitoringMode, DeleteSubscriptions: gopcua
//     dereferences nil for an unknown item id or session.
func (inst *instance) registerHandlers() {
	srv := inst.srv
	srv.RegisterHandler(id.GetEndpointsRequest_Encoding_DefaultBinary, inst.getEndpoints)
	srv.RegisterHandler(id.ReadRequest_Encoding_DefaultBinary, inst.read)
	srv.RegisterHandler(id.WriteRequest_Encoding_DefaultBinary, inst.write)
	inst.subs = inst.subscriptions()
	inst.subs.Register()
}

func (inst *instance) getEndpoints(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.GetEndpointsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	var eps []*ua.EndpointDescription
	for _, ep := range inst.srv.Endpoints() {
		if ep.EndpointURL == inst.public {
			eps = append(eps, ep)
		}
	}
	return &ua.GetEndpointsResponse{ResponseHeader: gopcuaserver.ResponseHeader(req.RequestHeader, ua.StatusOK), Endpoints: eps}, nil
}

func (inst *instance) read(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.ReadRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	n := len(req.NodesToRead)
	inst.sim.count(func(st *Stats) { st.ReadRequests++; st.ReadNodes += n })
	if err := checkCount(n, inst.sim.opts.MaxNodesPerRead); err != nil {
		return nil, err
	}
	results := make([]*ua.DataValue, n)
	for i, rv := range req.NodesToRead {
		results[i] = gopcuaserver.BadValue(ua.StatusBadNodeIDUnknown)
		if rv == nil || rv.NodeID == nil {
			continue
		}
		if ns, err := inst.srv.Namespace(int(rv.NodeID.Namespace())); err == nil {
			results[i] = ns.Attribute(rv.NodeID, rv.AttributeID)
		}
	}
	return &ua.ReadResponse{
		ResponseHeader:  gopcuaserver.ResponseHeader(req.RequestHeader, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

func (inst *instance) write(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.WriteRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	n := len(req.NodesToWrite)
	inst.sim.count(func(st *Stats) { st.WriteRequests++; st.WriteNodes += n })
	if err := checkCount(n, inst.sim.opts.MaxNodesPerWrite); err != nil {
		return nil, err
	}
	results := make([]ua.StatusCode, n)
	var changed []*variable
	for i, wv := range req.NodesToWrite {
		var v *variable
		results[i], v = inst.writeOne(wv)
		if v != nil {
			changed = append(changed, v)
		}
	}
	for _, v := range changed {
		inst.notify(v)
	}
	return &ua.WriteResponse{
		ResponseHeader:  gopcuaserver.ResponseHeader(req.RequestHeader, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// writeOne applies one write and returns its status and the variable it
// changed, if any.
func (inst *instance) writeOne(wv *ua.WriteValue) (ua.StatusCode, *variable) {
	if wv == nil || wv.NodeID == nil {
		return ua.StatusBadNodeIDInvalid, nil
	}
	s := inst.sim
	if wv.NodeID.Namespace() == 0 {
		return ua.StatusBadNotWritable, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.live(wv.NodeID)
	switch {
	case v == nil:
		return ua.StatusBadNodeIDUnknown, nil
	case wv.AttributeID != ua.AttributeIDValue:
		return ua.StatusBadNotWritable, nil
	case wv.Value == nil || wv.Value.Value == nil:
		return ua.StatusBadTypeMismatch, nil
	}
	val := wv.Value.Value
	if val.Has(ua.VariantArrayValues) || val.Type() != dataTypeIDs[v.typ].typeID {
		return ua.StatusBadTypeMismatch, nil
	}
	v.value = val.Value()
	v.changed = time.Now()
	return ua.StatusOK, v
}

// subscriptions serves subscriptions and monitored items on the
// instance's variables (see gopcuaserver), counting the calls.
func (inst *instance) subscriptions() *gopcuaserver.Service {
	s := inst.sim
	return &gopcuaserver.Service{
		Srv: inst.srv,
		Lookup: func(id *ua.NodeID) (string, *ua.DataValue, bool) {
			s.mu.Lock()
			defer s.mu.Unlock()
			v := s.live(id)
			if v == nil {
				return "", nil, false
			}
			return v.key, v.dataValue(), true
		},
		Check: func(n int) error {
			s.count(func(st *Stats) { st.MonitorRequests++; st.MonitoredItems += n })
			return checkCount(n, s.opts.MaxMonitoredItemsPerCall)
		},
		Spawn: inst.spawn,
		Done:  inst.done,
		Muted: func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.muted
		},
		Warn: s.logger.Warn,
	}
}

// notify sends the variable's current value (or its BadNodeIdUnknown
// status once removed) to the items monitoring it.
func (inst *instance) notify(v *variable) {
	if inst.subs == nil {
		return
	}
	inst.sim.mu.Lock()
	dv := v.dataValue()
	inst.sim.mu.Unlock()
	inst.subs.Deliver(inst.subs.Notifications(v.key, dv))
}

// spawn runs f in a goroutine that stop waits for, unless the instance is
// stopping.
func (inst *instance) spawn(f func()) {
	inst.spawnMu.Lock()
	defer inst.spawnMu.Unlock()
	if inst.stopping {
		return
	}
	inst.wg.Go(f)
}

// checkCount enforces an operation limit.
func checkCount(n int, limit uint32) error {
	switch {
	case n == 0:
		return ua.StatusBadNothingToDo
	case limit > 0 && n > int(limit):
		return ua.StatusBadTooManyOperations
	}
	return nil
}
