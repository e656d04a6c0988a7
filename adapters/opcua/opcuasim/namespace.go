package opcuasim

import (
	"time"

	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/server"
	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/gopcuaserver"
)

// accessReadWrite is CurrentRead | CurrentWrite.
const accessReadWrite = byte(ua.AccessLevelTypeCurrentRead | ua.AccessLevelTypeCurrentWrite)

// namespace serves the simulator's variables of one namespace index. It
// implements gopcua's server.NameSpace itself rather than using
// server.NodeNameSpace, because that one cannot delete nodes (Remove) and
// reports the DataType attribute of its variables as VariableNode.
type namespace struct {
	gopcuaserver.Folder // the top folder is the namespace's Objects folder
	sim                 *Server
}

// Browse lists the served variables under the Objects folder.
func (ns *namespace) Browse(bd *ua.BrowseDescription) *ua.BrowseResult {
	if ns.Top == nil || bd.NodeID == nil || !bd.NodeID.Equal(ns.Top.ID()) {
		return &ua.BrowseResult{StatusCode: ua.StatusBadNodeIDUnknown}
	}
	res := &ua.BrowseResult{StatusCode: ua.StatusGood, References: []*ua.ReferenceDescription{}}
	if bd.BrowseDirection == ua.BrowseDirectionInverse {
		return res
	}
	if bd.NodeClassMask != 0 && bd.NodeClassMask&uint32(ua.NodeClassVariable) == 0 {
		return res
	}
	ns.sim.mu.Lock()
	defer ns.sim.mu.Unlock()
	for _, v := range ns.sim.order {
		if v.removed || v.id.Namespace() != ns.Index {
			continue
		}
		res.References = append(res.References, &ua.ReferenceDescription{
			ReferenceTypeID: ua.NewNumericNodeID(0, id.Organizes),
			IsForward:       true,
			NodeID:          ua.NewExpandedNodeID(v.id, "", 0),
			BrowseName:      &ua.QualifiedName{NamespaceIndex: ns.Index, Name: v.name},
			DisplayName:     &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: v.name},
			NodeClass:       ua.NodeClassVariable,
			TypeDefinition:  ua.NewNumericExpandedNodeID(0, id.BaseDataVariableType),
		})
	}
	return res
}

// Attribute answers reads of a node's attributes.
func (ns *namespace) Attribute(nid *ua.NodeID, attr ua.AttributeID) *ua.DataValue {
	if n := ns.Node(nid); n != nil {
		a, err := n.Attribute(attr)
		if err != nil {
			return gopcuaserver.BadValue(ua.StatusBadAttributeIDInvalid)
		}
		return a.Value
	}
	ns.sim.mu.Lock()
	defer ns.sim.mu.Unlock()
	v := ns.sim.live(nid)
	if v == nil {
		return gopcuaserver.BadValue(ua.StatusBadNodeIDUnknown)
	}
	var val any
	switch attr {
	case ua.AttributeIDValue:
		return v.dataValue()
	case ua.AttributeIDNodeID:
		val = v.id
	case ua.AttributeIDNodeClass:
		val = int32(ua.NodeClassVariable)
	case ua.AttributeIDBrowseName:
		val = &ua.QualifiedName{NamespaceIndex: ns.Index, Name: v.name}
	case ua.AttributeIDDisplayName:
		val = &ua.LocalizedText{EncodingMask: ua.LocalizedTextText, Text: v.name}
	case ua.AttributeIDDescription:
		val = &ua.LocalizedText{}
	case ua.AttributeIDDataType:
		val = ua.NewNumericNodeID(0, dataTypeIDs[v.typ].nodeID)
	case ua.AttributeIDValueRank:
		val = int32(-1) // scalar
	case ua.AttributeIDAccessLevel, ua.AttributeIDUserAccessLevel:
		val = accessReadWrite
	case ua.AttributeIDMinimumSamplingInterval:
		val = float64(0)
	case ua.AttributeIDHistorizing:
		val = false
	default:
		return gopcuaserver.BadValue(ua.StatusBadAttributeIDInvalid)
	}
	return goodValue(ua.MustVariant(val), time.Time{})
}

// SetAttribute refuses: writes are answered by the Write handler, which
// checks data types.
func (ns *namespace) SetAttribute(*ua.NodeID, ua.AttributeID, *ua.DataValue) ua.StatusCode {
	return ua.StatusBadNotWritable
}

// live returns the served, not removed variable with the node id, or nil;
// s.mu must be held.
func (s *Server) live(nid *ua.NodeID) *variable {
	if nid == nil {
		return nil
	}
	v := s.vars[nid.String()]
	if v == nil || v.removed {
		return nil
	}
	return v
}

// dataValue returns the variable's value as a DataValue; the simulator's
// lock must be held.
func (v *variable) dataValue() *ua.DataValue {
	if v.removed {
		return gopcuaserver.BadValue(ua.StatusBadNodeIDUnknown)
	}
	return goodValue(ua.MustVariant(v.value), v.changed)
}

// goodValue builds a DataValue with a Good status.
func goodValue(val *ua.Variant, source time.Time) *ua.DataValue {
	dv := &ua.DataValue{Value: val, SourceTimestamp: source, ServerTimestamp: time.Now()}
	dv.UpdateMask()
	return dv
}

// Interface guards.
var _ server.NameSpace = (*namespace)(nil)
