package uaserver

import (
	"sync"
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/gopcuaserver"
)

// NamespaceURI is the URI of the gateway's namespace; clients should look
// its index up in the server's NamespaceArray (it is 1 today).
const NamespaceURI = "urn:bmsgw:gateway"

const (
	accessRead      = byte(ua.AccessLevelTypeCurrentRead)
	accessReadWrite = byte(ua.AccessLevelTypeCurrentRead | ua.AccessLevelTypeCurrentWrite)
)

// dataTypeNodes maps the served built-in types to their DataType nodes.
var dataTypeNodes = map[ua.TypeID]uint32{
	ua.TypeIDBoolean:  id.Boolean,
	ua.TypeIDDouble:   id.Double,
	ua.TypeIDString:   id.String,
	ua.TypeIDDateTime: id.DateTime,
}

// namespace serves the current tree. It implements gopcua's
// server.NameSpace itself (as adapters/opcua/opcuasim does) because
// server.NodeNameSpace cannot delete nodes, which a config reload needs,
// and reports wrong DataType attributes.
type namespace struct {
	gopcuaserver.Folder // the top folder is RootID, referenced from ns 0's Objects

	mu sync.Mutex
	t  *tree
}

func newNamespace() *namespace {
	return &namespace{Folder: gopcuaserver.Folder{URI: NamespaceURI}, t: &tree{nodes: map[string]*node{}}}
}

// current returns the tree being served.
func (ns *namespace) current() *tree {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return ns.t
}

// swap serves t and returns the tree it replaces.
func (ns *namespace) swap(t *tree) *tree {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	old := ns.t
	ns.t = t
	return old
}

// lookup returns the node with the node id, or nil.
func (ns *namespace) lookup(nid *ua.NodeID) *node {
	if nid == nil || nid.Namespace() != ns.Index || nid.Type() != ua.NodeIDTypeString {
		return nil
	}
	return ns.current().nodes[nid.StringID()]
}

func (ns *namespace) nodeID(s string) *ua.NodeID { return ua.NewStringNodeID(ns.Index, s) }

// Browse lists a folder's children (forward references only).
func (ns *namespace) Browse(bd *ua.BrowseDescription) *ua.BrowseResult {
	if bd == nil {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	t := ns.current()
	n := ns.lookupIn(t, bd.NodeID)
	if n == nil {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	res := &ua.BrowseResult{StatusCode: ua.StatusGood, References: []*ua.ReferenceDescription{}}
	if bd.BrowseDirection == ua.BrowseDirectionInverse {
		return res
	}
	for _, cid := range n.children {
		c := t.nodes[cid]
		class, typeDef, ref := ua.NodeClassVariable, uint32(id.BaseDataVariableType), uint32(id.HasComponent)
		if c.folder {
			class, typeDef, ref = ua.NodeClassObject, id.FolderType, id.Organizes
		}
		if bd.NodeClassMask != 0 && bd.NodeClassMask&uint32(class) == 0 {
			continue
		}
		res.References = append(res.References, &ua.ReferenceDescription{
			ReferenceTypeID: ua.NewNumericNodeID(0, ref),
			IsForward:       true,
			NodeID:          ua.NewExpandedNodeID(ns.nodeID(c.id), "", 0),
			BrowseName:      &ua.QualifiedName{NamespaceIndex: ns.Index, Name: c.name},
			DisplayName:     &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: c.display},
			NodeClass:       class,
			TypeDefinition:  ua.NewNumericExpandedNodeID(0, typeDef),
		})
	}
	return res
}

func (ns *namespace) lookupIn(t *tree, nid *ua.NodeID) *node {
	if nid == nil || nid.Namespace() != ns.Index || nid.Type() != ua.NodeIDTypeString {
		return nil
	}
	return t.nodes[nid.StringID()]
}

// Attribute answers reads of a node's attributes.
func (ns *namespace) Attribute(nid *ua.NodeID, attr ua.AttributeID) *ua.DataValue {
	n := ns.lookup(nid)
	if n == nil {
		return gopcuaserver.BadValue(ua.StatusBadNodeIDUnknown)
	}
	var val any
	switch attr {
	case ua.AttributeIDNodeID:
		val = ns.nodeID(n.id)
	case ua.AttributeIDBrowseName:
		val = &ua.QualifiedName{NamespaceIndex: ns.Index, Name: n.name}
	case ua.AttributeIDDisplayName:
		val = &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: n.display}
	case ua.AttributeIDDescription:
		val = &ua.LocalizedText{}
	case ua.AttributeIDWriteMask, ua.AttributeIDUserWriteMask:
		val = uint32(0)
	}
	if val != nil {
		return goodValue(ua.MustVariant(val), time.Time{})
	}
	if n.folder {
		switch attr {
		case ua.AttributeIDNodeClass:
			val = int32(ua.NodeClassObject)
		case ua.AttributeIDEventNotifier:
			val = byte(0)
		default:
			return gopcuaserver.BadValue(ua.StatusBadAttributeIDInvalid)
		}
		return goodValue(ua.MustVariant(val), time.Time{})
	}
	switch attr {
	case ua.AttributeIDValue:
		return n.dataValue()
	case ua.AttributeIDNodeClass:
		val = int32(ua.NodeClassVariable)
	case ua.AttributeIDDataType:
		val = ua.NewNumericNodeID(0, dataTypeNodes[n.typ])
	case ua.AttributeIDValueRank:
		val = int32(-1) // scalar
	case ua.AttributeIDAccessLevel, ua.AttributeIDUserAccessLevel:
		val = accessRead
		if n.writable {
			val = accessReadWrite
		}
	case ua.AttributeIDMinimumSamplingInterval:
		val = float64(0)
	case ua.AttributeIDHistorizing:
		val = false
	default:
		return gopcuaserver.BadValue(ua.StatusBadAttributeIDInvalid)
	}
	return goodValue(ua.MustVariant(val), time.Time{})
}

// SetAttribute refuses: writes are answered by the server's own Write
// handler, which checks them.
func (ns *namespace) SetAttribute(*ua.NodeID, ua.AttributeID, *ua.DataValue) ua.StatusCode {
	return ua.StatusBadNotWritable
}

// goodValue builds a DataValue with a Good status.
func goodValue(val *ua.Variant, source time.Time) *ua.DataValue {
	dv := &ua.DataValue{Value: val, SourceTimestamp: source, ServerTimestamp: time.Now()}
	dv.UpdateMask()
	return dv
}

// Interface guards.
var _ server.NameSpace = (*namespace)(nil)
