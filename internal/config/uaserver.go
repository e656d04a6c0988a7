package config

import (
	"net/url"
	"strings"
	"time"
)

// OPCUAServer is the gateway's own OPC UA server for BMS vendors' head-ends (see docs/opcua-server.md). It offers security None only (a limit of the gopcua server): it is read-only unless points are listed writable, and listens on loopback unless allow_insecure_network acknowledges the missing transport security.
type OPCUAServer struct {
	// Endpoint, opc.tcp://host:port, e.g. opc.tcp://127.0.0.1:4850.
	Endpoint string `yaml:"endpoint" jsonschema:"required"`
	// Required to listen on an address other than loopback: the exact sentence "i accept that opc ua traffic is unencrypted and unauthenticated".
	AllowInsecureNetwork string `yaml:"allow_insecure_network,omitempty"`
	// Points that vendors may override, as site/point; each must be writable. Default: none (read-only).
	Writable []string `yaml:"writable,omitempty"`
	// Client addresses (CIDRs or addresses) whose writes are accepted; required with writable.
	AllowedPeers []string `yaml:"allowed_peers,omitempty"`
	// How long a vendor's override lasts. Default: 2h.
	OverrideFor time.Duration `yaml:"override_for,omitempty"`
}

func (l *loader) opcuaServer(g *Gateway, gf *GatewayFile, pos *Positions) {
	o := gf.OPCUAServer
	if o == nil {
		return
	}
	u, err := url.Parse(o.Endpoint)
	if err != nil || u.Scheme != "opc.tcp" || u.Port() == "" {
		l.errs.add(pos.Key(o, "endpoint"), "opcua_server endpoint %q is not opc.tcp://host:port", o.Endpoint)
	}
	if o.OverrideFor < 0 {
		l.errs.add(pos.Key(o, "override_for"), "opcua_server override_for must not be negative")
	}
	if o.OverrideFor == 0 {
		o.OverrideFor = 2 * time.Hour
	}
	g.OPCUAServer = o
}

// checkOPCUAServer checks the writable points once the sites are loaded.
func (l *loader) checkOPCUAServer(g *Gateway, gf *GatewayFile, pos *Positions) {
	o := gf.OPCUAServer
	if o == nil {
		return
	}
	for i, ref := range o.Writable {
		siteID, pointID, ok := strings.Cut(ref, "/")
		at := pos.Of(&o.Writable[i])
		if !ok {
			l.errs.add(at, "opcua_server writable %q: write site/point", ref)
			continue
		}
		s := g.Site(siteID)
		if s == nil {
			l.errs.add(at, "opcua_server writable %q: no site %q", ref, siteID)
			continue
		}
		p := s.Points[pointID]
		switch {
		case p == nil:
			l.errs.add(at, "opcua_server writable %q: site %s has no point %q%s", ref, siteID, pointID, didYouMean(pointID, keys(s.Points)))
		case !p.Writable():
			l.errs.add(at, "opcua_server writable %q: the point is not writable (access: write)", ref)
		}
	}
	if len(o.Writable) > 0 && len(o.AllowedPeers) == 0 {
		l.errs.add(pos.Key(o, "writable"), "opcua_server has writable points but no allowed_peers; list the head-ends' addresses that may write")
	}
}
