package opcuasim

import (
	"slices"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
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
	srv.RegisterHandler(id.CreateSubscriptionRequest_Encoding_DefaultBinary, inst.createSubscription)
	srv.RegisterHandler(id.DeleteSubscriptionsRequest_Encoding_DefaultBinary, inst.deleteSubscriptions)
	srv.RegisterHandler(id.CreateMonitoredItemsRequest_Encoding_DefaultBinary, inst.createMonitoredItems)
	srv.RegisterHandler(id.DeleteMonitoredItemsRequest_Encoding_DefaultBinary, inst.deleteMonitoredItems)
	srv.RegisterHandler(id.SetMonitoringModeRequest_Encoding_DefaultBinary, inst.setMonitoringMode)
}

// responseHeader builds a response header the way gopcua does.
func responseHeader(req *ua.RequestHeader, status ua.StatusCode) *ua.ResponseHeader {
	var handle uint32
	if req != nil {
		handle = req.RequestHandle
	}
	return &ua.ResponseHeader{
		Timestamp:          time.Now(),
		RequestHandle:      handle,
		ServiceResult:      status,
		ServiceDiagnostics: &ua.DiagnosticInfo{},
		StringTable:        []string{},
		AdditionalHeader:   ua.NewExtensionObject(nil),
	}
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
	return &ua.GetEndpointsResponse{ResponseHeader: responseHeader(req.RequestHeader, ua.StatusOK), Endpoints: eps}, nil
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
		results[i] = badValue(ua.StatusBadNodeIDUnknown)
		if rv == nil || rv.NodeID == nil {
			continue
		}
		if ns, err := inst.srv.Namespace(int(rv.NodeID.Namespace())); err == nil {
			results[i] = ns.Attribute(rv.NodeID, rv.AttributeID)
		}
	}
	return &ua.ReadResponse{
		ResponseHeader:  responseHeader(req.RequestHeader, ua.StatusOK),
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
		ResponseHeader:  responseHeader(req.RequestHeader, ua.StatusOK),
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

func (inst *instance) createSubscription(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	subs := inst.srv.SubscriptionService
	subs.Mu.Lock()
	_, taken := subs.Subs[uint32(len(subs.Subs))+1]
	subs.Mu.Unlock()
	if taken {
		return nil, ua.StatusBadTooManySubscriptions
	}
	return subs.CreateSubscription(sc, r, reqID)
}

func (inst *instance) deleteSubscriptions(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	if r.Header() == nil || inst.srv.Session(r.Header()) == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	return inst.srv.SubscriptionService.DeleteSubscriptions(sc, r, reqID)
}

// pending is a notification on its way to a subscription.
type pending struct {
	sub *server.Subscription
	n   *ua.MonitoredItemNotification
}

func (inst *instance) createMonitoredItems(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.CreateMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	s := inst.sim
	n := len(req.ItemsToCreate)
	s.count(func(st *Stats) { st.MonitorRequests++; st.MonitoredItems += n })
	if err := checkCount(n, s.opts.MaxMonitoredItemsPerCall); err != nil {
		return nil, err
	}
	sub, err := inst.ownSubscription(req.RequestHeader, req.SubscriptionID)
	if err != nil {
		return nil, err
	}
	mis := inst.srv.MonitoredItemService
	results := make([]*ua.MonitoredItemCreateResult, n)
	var initial []pending
	mis.Mu.Lock()
	for i, it := range req.ItemsToCreate {
		res := &ua.MonitoredItemCreateResult{FilterResult: ua.NewExtensionObject(nil)}
		results[i] = res
		switch {
		case it == nil || it.ItemToMonitor == nil || it.RequestedParameters == nil:
			res.StatusCode = ua.StatusBadNodeIDInvalid
			continue
		case it.ItemToMonitor.AttributeID != ua.AttributeIDValue:
			res.StatusCode = ua.StatusBadAttributeIDInvalid
			continue
		}
		s.mu.Lock()
		v := s.live(it.ItemToMonitor.NodeID)
		var dv *ua.DataValue
		if v != nil {
			dv = v.dataValue()
		}
		s.mu.Unlock()
		if v == nil {
			res.StatusCode = ua.StatusBadNodeIDUnknown
			continue
		}
		item := &server.MonitoredItem{ID: mis.NextID(), Sub: sub, Req: it, Mode: it.MonitoringMode}
		mis.Items[item.ID] = item
		mis.Nodes[v.key] = append(mis.Nodes[v.key], item)
		mis.Subs[sub.ID] = append(mis.Subs[sub.ID], item)
		res.StatusCode = ua.StatusOK
		res.MonitoredItemID = item.ID
		res.RevisedSamplingInterval = max(it.RequestedParameters.SamplingInterval, 0)
		res.RevisedQueueSize = 1
		initial = append(initial, pending{sub, &ua.MonitoredItemNotification{
			ClientHandle: it.RequestedParameters.ClientHandle,
			Value:        dv,
		}})
	}
	mis.Mu.Unlock()
	// The first value of each item goes out after the response, from a
	// goroutine the instance waits for, so the server's single request
	// loop does not block on a full subscription queue.
	inst.spawn(func() { inst.deliver(initial) })
	return &ua.CreateMonitoredItemsResponse{
		ResponseHeader:  responseHeader(req.RequestHeader, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

func (inst *instance) deleteMonitoredItems(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.DeleteMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results, owned, err := inst.ownItems(req.RequestHeader, req.SubscriptionID, req.MonitoredItemIDs)
	if err != nil {
		return nil, err
	}
	for _, id := range owned {
		inst.srv.MonitoredItemService.DeleteMonitoredItem(id)
	}
	return &ua.DeleteMonitoredItemsResponse{
		ResponseHeader:  responseHeader(req.RequestHeader, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

func (inst *instance) setMonitoringMode(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.SetMonitoringModeRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results, owned, err := inst.ownItems(req.RequestHeader, req.SubscriptionID, req.MonitoredItemIDs)
	if err != nil {
		return nil, err
	}
	mis := inst.srv.MonitoredItemService
	mis.Mu.Lock()
	for _, id := range owned {
		if item := mis.Items[id]; item != nil {
			item.Mode = req.MonitoringMode
		}
	}
	mis.Mu.Unlock()
	return &ua.SetMonitoringModeResponse{
		ResponseHeader:  responseHeader(req.RequestHeader, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// ownSubscription returns the subscription if it belongs to the session
// of the request.
func (inst *instance) ownSubscription(hdr *ua.RequestHeader, subID uint32) (*server.Subscription, error) {
	subs := inst.srv.SubscriptionService
	subs.Mu.Lock()
	sub := subs.Subs[subID]
	subs.Mu.Unlock()
	if sub == nil {
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	sess := inst.srv.Session(hdr)
	if sess == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	if sub.Session == nil || sub.Session.AuthTokenID.String() != sess.AuthTokenID.String() {
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	return sub, nil
}

// ownItems sorts monitored item ids into those of the session's
// subscription and the rest, with a status for each.
func (inst *instance) ownItems(hdr *ua.RequestHeader, subID uint32, ids []uint32) ([]ua.StatusCode, []uint32, error) {
	sub, err := inst.ownSubscription(hdr, subID)
	if err != nil {
		return nil, nil, err
	}
	if len(ids) == 0 {
		return nil, nil, ua.StatusBadNothingToDo
	}
	mis := inst.srv.MonitoredItemService
	results := make([]ua.StatusCode, len(ids))
	var owned []uint32
	mis.Mu.Lock()
	for i, id := range ids {
		item := mis.Items[id]
		if item == nil || item.Sub != sub {
			results[i] = ua.StatusBadMonitoredItemIDInvalid
			continue
		}
		owned = append(owned, id)
	}
	mis.Mu.Unlock()
	return results, owned, nil
}

// notify sends the variable's current value (or its BadNodeIdUnknown
// status once removed) to the items monitoring it.
func (inst *instance) notify(v *variable) {
	mis := inst.srv.MonitoredItemService
	if mis == nil {
		return
	}
	inst.sim.mu.Lock()
	dv := v.dataValue()
	inst.sim.mu.Unlock()
	mis.Mu.Lock()
	items := slices.Clone(mis.Nodes[v.key])
	mis.Mu.Unlock()
	list := make([]pending, 0, len(items))
	for _, item := range items {
		if item == nil || item.Sub == nil || item.Req == nil || item.Req.RequestedParameters == nil {
			continue
		}
		list = append(list, pending{item.Sub, &ua.MonitoredItemNotification{
			ClientHandle: item.Req.RequestedParameters.ClientHandle,
			Value:        dv,
		}})
	}
	inst.deliver(list)
}

// deliver queues notifications on their subscriptions. A queue that stays
// full for notifyTimeout belongs to a subscription being deleted; the rest
// of the batch is dropped then, as it is when the instance stops.
func (inst *instance) deliver(list []pending) {
	inst.sim.mu.Lock()
	muted := inst.sim.muted
	inst.sim.mu.Unlock()
	if len(list) == 0 || muted {
		return
	}
	timer := time.NewTimer(notifyTimeout)
	defer timer.Stop()
	for _, p := range list {
		select {
		case p.sub.NotifyChannel <- p.n:
		case <-inst.done:
			return
		case <-timer.C:
			inst.sim.logger.Warn("opc ua simulator dropped notifications", "subscription", p.sub.ID)
			return
		}
	}
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
