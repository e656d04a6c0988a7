package gopcuaserver

import (
	"testing"
	"time"

	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/require"
)

// The handlers are proven against real clients by the two servers that
// use them (adapters/opcua/opcuasim and internal/uaserver: node-opcua and
// gopcua clients subscribing, hostile clients sending unknown ids); this
// tests what Deliver decides on its own.
func TestDeliver(t *testing.T) {
	sub := &server.Subscription{ID: 7, NotifyChannel: make(chan *ua.MonitoredItemNotification, 2)}
	n := func(h uint32) Pending { return Pending{sub, &ua.MonitoredItemNotification{ClientHandle: h}} }
	muted := false
	var warned []any
	s := &Service{Done: make(chan struct{}), Muted: func() bool { return muted },
		Warn: func(msg string, args ...any) { warned = append(warned, msg) }}

	s.Deliver([]Pending{n(1), n(2)})
	require.Equal(t, uint32(1), (<-sub.NotifyChannel).ClientHandle, "in order")
	require.Equal(t, uint32(2), (<-sub.NotifyChannel).ClientHandle)

	muted = true
	s.Deliver([]Pending{n(3)})
	require.Empty(t, sub.NotifyChannel, "muted: dropped")
	muted = false

	// A queue that stays full (a subscription being deleted) costs at
	// most NotifyTimeout, and the rest of the batch is dropped.
	began := time.Now()
	s.Deliver([]Pending{n(4), n(5), n(6), n(7)})
	require.Len(t, sub.NotifyChannel, 2)
	require.GreaterOrEqual(t, time.Since(began), NotifyTimeout)
	require.Less(t, time.Since(began), 2*NotifyTimeout)
	require.Equal(t, []any{"opc ua server dropped notifications"}, warned)
}

func TestResponseHeader(t *testing.T) {
	h := ResponseHeader(&ua.RequestHeader{RequestHandle: 42}, ua.StatusBadNothingToDo)
	require.Equal(t, uint32(42), h.RequestHandle)
	require.Equal(t, ua.StatusBadNothingToDo, h.ServiceResult)
	require.Zero(t, ResponseHeader(nil, ua.StatusOK).RequestHandle, "no request header")
}
