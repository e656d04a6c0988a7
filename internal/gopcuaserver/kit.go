package gopcuaserver

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/server/attrs"
	"github.com/gopcua/opcua/ua"
)

// Folder is the fixed part of a server.NameSpace whose nodes are answered
// by its own Attribute and Browse rather than gopcua's node store: its
// URI, its index, and the top folder that namespace 0's Objects folder
// references. Embed it and add Attribute and Browse.
type Folder struct {
	URI   string
	Index uint16
	Top   *server.Node
}

// Name returns the namespace URI.
func (f *Folder) Name() string { return f.URI }

// AddNode ignores n: the namespace's nodes are not gopcua's.
func (f *Folder) AddNode(n *server.Node) *server.Node { return n }

// Node returns the top folder as a server.Node; other nodes have none.
func (f *Folder) Node(nid *ua.NodeID) *server.Node {
	if f.Top != nil && nid != nil && nid.Equal(f.Top.ID()) {
		return f.Top
	}
	return nil
}

// Objects returns the top folder.
func (f *Folder) Objects() *server.Node { return f.Top }

// Root returns nil: the root folder lives in namespace 0.
func (f *Folder) Root() *server.Node { return nil }

// ID returns the namespace index.
func (f *Folder) ID() uint16 { return f.Index }

// SetID sets the namespace index.
func (f *Folder) SetID(i uint16) { f.Index = i }

// FolderNode builds an Objects-type folder node.
func FolderNode(nid *ua.NodeID, name string) *server.Node {
	return server.NewNode(
		nid,
		map[ua.AttributeID]*ua.DataValue{
			ua.AttributeIDNodeClass:     server.DataValueFromValue(uint32(ua.NodeClassObject)),
			ua.AttributeIDBrowseName:    server.DataValueFromValue(&ua.QualifiedName{NamespaceIndex: nid.Namespace(), Name: name}),
			ua.AttributeIDDisplayName:   server.DataValueFromValue(attrs.DisplayName(name, "")),
			ua.AttributeIDEventNotifier: server.DataValueFromValue(byte(0)),
		},
		nil,
		nil,
	)
}

// BadValue builds a DataValue carrying only a status.
func BadValue(code ua.StatusCode) *ua.DataValue {
	dv := &ua.DataValue{Status: code, ServerTimestamp: time.Now()}
	dv.UpdateMask()
	return dv
}

// Logger bridges gopcua's server logger to slog. gopcua calls it
// printf-style ("socket closed: %s", err), so handing it a *slog.Logger
// directly would log the arguments as !BADKEY attributes; the message is
// formatted here instead. gopcua reports ordinary events (a client hanging
// up, the listener closing, its own start-up chatter) as warnings and
// errors, so everything goes at Debug except its errors, which go at
// Errors.
type Logger struct {
	L      *slog.Logger
	Errors slog.Level
}

func (g Logger) log(level slog.Level, msg string, args ...any) {
	g.L.Log(context.Background(), level, "gopcua server", "detail", fmt.Sprintf(msg, args...))
}

// Debug logs at Debug.
func (g Logger) Debug(msg string, args ...any) { g.log(slog.LevelDebug, msg, args...) }

// Info logs at Debug.
func (g Logger) Info(msg string, args ...any) { g.log(slog.LevelDebug, msg, args...) }

// Warn logs at Debug.
func (g Logger) Warn(msg string, args ...any) { g.log(slog.LevelDebug, msg, args...) }

// Error logs at g.Errors.
func (g Logger) Error(msg string, args ...any) { g.log(g.Errors, msg, args...) }

// Interface guards.
var _ server.Logger = Logger{}
