// Package gopcuaserver holds what both of the project's gopcua v0.8.0
// servers (the OPC UA simulator and the gateway's OPC UA server) put in
// place of gopcua's own parts: the subscription and monitored-item
// handlers (this file), and a namespace's fixed part, the logger bridge
// and node helpers (kit.go). gopcua's subscription handlers
//
//   - answer Good to CreateMonitoredItems for nodes that do not exist and
//     start a goroutine per item that nobody waits for;
//   - number subscriptions len(subs)+1, which silently replaces a live
//     subscription after one was deleted;
//   - dereference nil for an unknown item id or session in
//     DeleteMonitoredItems, SetMonitoringMode and DeleteSubscriptions.
//
// Register installs these handlers before the server starts (gopcua keeps
// a handler that is already registered); Notifications and Deliver send
// a node's changes to the items monitoring it.
package gopcuaserver

import (
	"slices"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/gopcua/opcua/uasc"
)

// NotifyTimeout bounds how long a notification waits for a full
// subscription queue (only a subscription being deleted stays full).
const NotifyTimeout = time.Second

// Service is the subscription side of one server.
type Service struct {
	Srv *server.Server
	// Lookup returns the key a node's items are filed under (gopcua's
	// MonitoredItemService.Nodes) and the node's current value; ok is
	// false for a node that cannot be monitored.
	Lookup func(id *ua.NodeID) (key string, dv *ua.DataValue, ok bool)
	// Check, if set, vets a CreateMonitoredItems call of n items before
	// anything else (limits, counting); an error refuses the call.
	Check func(n int) error
	// Spawn runs f in a goroutine the server waits for when it stops.
	Spawn func(f func())
	// Done is closed when the server stops.
	Done <-chan struct{}
	// Muted, if set, drops notifications while it reports true.
	Muted func() bool
	// Warn logs notifications dropped on a full queue.
	Warn func(msg string, args ...any)
}

// Register installs the handlers on Srv; call it before Srv.Start.
func (s *Service) Register() {
	s.Srv.RegisterHandler(id.CreateSubscriptionRequest_Encoding_DefaultBinary, s.createSubscription)
	s.Srv.RegisterHandler(id.DeleteSubscriptionsRequest_Encoding_DefaultBinary, s.deleteSubscriptions)
	s.Srv.RegisterHandler(id.CreateMonitoredItemsRequest_Encoding_DefaultBinary, s.createMonitoredItems)
	s.Srv.RegisterHandler(id.DeleteMonitoredItemsRequest_Encoding_DefaultBinary, s.deleteMonitoredItems)
	s.Srv.RegisterHandler(id.SetMonitoringModeRequest_Encoding_DefaultBinary, s.setMonitoringMode)
}

// ResponseHeader builds a response header the way gopcua does.
func ResponseHeader(req *ua.RequestHeader, status ua.StatusCode) *ua.ResponseHeader {
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

// Pending is a notification on its way to a subscription.
type Pending struct {
	Sub *server.Subscription
	N   *ua.MonitoredItemNotification
}

func (s *Service) createSubscription(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	subs := s.Srv.SubscriptionService
	subs.Mu.Lock()
	_, taken := subs.Subs[uint32(len(subs.Subs))+1]
	subs.Mu.Unlock()
	if taken {
		return nil, ua.StatusBadTooManySubscriptions
	}
	return subs.CreateSubscription(sc, r, reqID)
}

func (s *Service) deleteSubscriptions(sc *uasc.SecureChannel, r ua.Request, reqID uint32) (ua.Response, error) {
	if r.Header() == nil || s.Srv.Session(r.Header()) == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	return s.Srv.SubscriptionService.DeleteSubscriptions(sc, r, reqID)
}

func (s *Service) createMonitoredItems(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.CreateMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	if s.Check != nil {
		if err := s.Check(len(req.ItemsToCreate)); err != nil {
			return nil, err
		}
	}
	if len(req.ItemsToCreate) == 0 {
		return nil, ua.StatusBadNothingToDo
	}
	sub, err := s.ownSubscription(req.RequestHeader, req.SubscriptionID)
	if err != nil {
		return nil, err
	}
	mis := s.Srv.MonitoredItemService
	results := make([]*ua.MonitoredItemCreateResult, len(req.ItemsToCreate))
	var initial []Pending
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
		key, dv, ok := s.Lookup(it.ItemToMonitor.NodeID)
		if !ok {
			res.StatusCode = ua.StatusBadNodeIDUnknown
			continue
		}
		item := &server.MonitoredItem{ID: mis.NextID(), Sub: sub, Req: it, Mode: it.MonitoringMode}
		mis.Items[item.ID] = item
		mis.Nodes[key] = append(mis.Nodes[key], item)
		mis.Subs[sub.ID] = append(mis.Subs[sub.ID], item)
		res.StatusCode = ua.StatusOK
		res.MonitoredItemID = item.ID
		res.RevisedSamplingInterval = max(it.RequestedParameters.SamplingInterval, 0)
		res.RevisedQueueSize = 1
		initial = append(initial, Pending{sub, &ua.MonitoredItemNotification{
			ClientHandle: it.RequestedParameters.ClientHandle,
			Value:        dv,
		}})
	}
	mis.Mu.Unlock()
	// The first value of each item goes out after the response, from a
	// goroutine the server waits for, so gopcua's single request loop
	// never blocks on a full subscription queue.
	s.Spawn(func() { s.Deliver(initial) })
	return &ua.CreateMonitoredItemsResponse{
		ResponseHeader:  ResponseHeader(req.RequestHeader, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

func (s *Service) deleteMonitoredItems(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.DeleteMonitoredItemsRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results, owned, err := s.ownItems(req.RequestHeader, req.SubscriptionID, req.MonitoredItemIDs)
	if err != nil {
		return nil, err
	}
	for _, id := range owned {
		s.Srv.MonitoredItemService.DeleteMonitoredItem(id)
	}
	return &ua.DeleteMonitoredItemsResponse{
		ResponseHeader:  ResponseHeader(req.RequestHeader, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

func (s *Service) setMonitoringMode(_ *uasc.SecureChannel, r ua.Request, _ uint32) (ua.Response, error) {
	req, ok := r.(*ua.SetMonitoringModeRequest)
	if !ok {
		return nil, ua.StatusBadRequestTypeInvalid
	}
	results, owned, err := s.ownItems(req.RequestHeader, req.SubscriptionID, req.MonitoredItemIDs)
	if err != nil {
		return nil, err
	}
	mis := s.Srv.MonitoredItemService
	mis.Mu.Lock()
	for _, id := range owned {
		if item := mis.Items[id]; item != nil {
			item.Mode = req.MonitoringMode
		}
	}
	mis.Mu.Unlock()
	return &ua.SetMonitoringModeResponse{
		ResponseHeader:  ResponseHeader(req.RequestHeader, ua.StatusOK),
		Results:         results,
		DiagnosticInfos: []*ua.DiagnosticInfo{},
	}, nil
}

// ownSubscription returns the subscription if it belongs to the session
// of the request.
func (s *Service) ownSubscription(hdr *ua.RequestHeader, subID uint32) (*server.Subscription, error) {
	if hdr == nil {
		return nil, ua.StatusBadSessionIDInvalid
	}
	subs := s.Srv.SubscriptionService
	subs.Mu.Lock()
	sub := subs.Subs[subID]
	subs.Mu.Unlock()
	if sub == nil {
		return nil, ua.StatusBadSubscriptionIDInvalid
	}
	sess := s.Srv.Session(hdr)
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
func (s *Service) ownItems(hdr *ua.RequestHeader, subID uint32, ids []uint32) ([]ua.StatusCode, []uint32, error) {
	sub, err := s.ownSubscription(hdr, subID)
	if err != nil {
		return nil, nil, err
	}
	if len(ids) == 0 {
		return nil, nil, ua.StatusBadNothingToDo
	}
	mis := s.Srv.MonitoredItemService
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

// Notifications returns dv as a notification for each item monitoring
// the node filed under key.
func (s *Service) Notifications(key string, dv *ua.DataValue) []Pending {
	mis := s.Srv.MonitoredItemService
	if mis == nil {
		return nil
	}
	mis.Mu.Lock()
	items := slices.Clone(mis.Nodes[key])
	mis.Mu.Unlock()
	list := make([]Pending, 0, len(items))
	for _, item := range items {
		if item == nil || item.Sub == nil || item.Req == nil || item.Req.RequestedParameters == nil {
			continue
		}
		list = append(list, Pending{item.Sub, &ua.MonitoredItemNotification{
			ClientHandle: item.Req.RequestedParameters.ClientHandle,
			Value:        dv,
		}})
	}
	return list
}

// Deliver queues notifications on their subscriptions. A queue that stays
// full for NotifyTimeout belongs to a subscription being deleted; the
// rest of the batch is dropped then, as it is when the server stops.
func (s *Service) Deliver(list []Pending) {
	if len(list) == 0 || (s.Muted != nil && s.Muted()) {
		return
	}
	timer := time.NewTimer(NotifyTimeout)
	defer timer.Stop()
	for _, p := range list {
		select {
		case p.Sub.NotifyChannel <- p.N:
		case <-s.Done:
			return
		case <-timer.C:
			if s.Warn != nil {
				s.Warn("opc ua server dropped notifications", "subscription", p.Sub.ID)
			}
			return
		}
	}
}

// ConnectionClosed deletes the subscriptions of a connection that closed,
// given the remote address gopcua saw for it (the proxy's side, see
// opcuaproxy's Closed hook). gopcua keeps them until their lifetime runs
// out and numbers new subscriptions len(subs)+1, so lingering ones make
// collisions (refused by CreateSubscription) likelier. A real server
// would keep them for a transfer to a new session, which gopcua does not
// support anyway.
func (s *Service) ConnectionClosed(upstreamAddr string) {
	s.deleteWhere(func(sub *server.Subscription) bool {
		return sub != nil && sub.Channel != nil && sub.Channel.RemoteAddr().String() == upstreamAddr
	})
}

// DeleteAll deletes every subscription, when the server stops.
func (s *Service) DeleteAll() {
	s.deleteWhere(func(*server.Subscription) bool { return true })
}

func (s *Service) deleteWhere(match func(*server.Subscription) bool) {
	subs := s.Srv.SubscriptionService
	if subs == nil {
		return
	}
	subs.Mu.Lock()
	var ids []uint32
	for id, sub := range subs.Subs {
		if match(sub) {
			ids = append(ids, id)
		}
	}
	subs.Mu.Unlock()
	for _, id := range ids {
		subs.DeleteSubscription(id)
	}
}
