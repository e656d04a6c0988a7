package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/bmsgw/bmsgw/internal/site"
)

func (l *loader) template(g *Gateway, abs string) {
	data, ok := l.read(abs)
	if !ok {
		return
	}
	file := displayPath(abs)
	var tf TemplateFile
	pos := decodeDocument(file, data, &tf, l.errs)
	if tf.Template.ID == "" {
		return
	}
	if !idPattern.MatchString(tf.Template.ID) {
		l.errs.add(pos.Key(&tf.Template, "id"), "template id %q must use lower case letters, digits, - and _", tf.Template.ID)
	}
	if other, dup := g.Templates[tf.Template.ID]; dup {
		l.errs.add(pos.Key(&tf.Template, "id"), "template id %q is already defined in %s", tf.Template.ID, other.file)
		return
	}
	ids := map[string]Pos{}
	for i := range tf.Points {
		p := &tf.Points[i]
		l.uniqueID(ids, p.ID, pos.Key(p, "id"), "point")
		if p.Connection != "" {
			l.errs.add(pos.Key(p, "connection"), "template point %q must not name a connection; the device that uses the template gives it", p.ID)
		}
		l.pointShape(p, pos, nil)
	}
	tf.file, tf.pos = file, pos
	g.Templates[tf.Template.ID] = &tf
}

func (l *loader) uniqueID(ids map[string]Pos, id string, p Pos, what string) bool {
	if id == "" {
		return false
	}
	ok := true
	if !idPattern.MatchString(id) {
		l.errs.add(p, "%s id %q must use lower case letters, digits, - and _", what, id)
		ok = false
	}
	if first, dup := ids[id]; dup {
		l.errs.add(p, "duplicate %s id %q (first defined at line %d); ids must be unique", what, id, first.Line)
		return false
	}
	ids[id] = p
	return ok
}

// siteBuild is the state of resolving one mapping file.
type siteBuild struct {
	*loader
	g     *Gateway
	mf    *MappingFile
	pos   *Positions
	dir   string
	s     *site.Site
	conns map[string]*Connection
	// pointPos says where each point was declared, for messages.
	pointPos map[string]Pos
}

func (l *loader) mapping(g *Gateway, abs string) *site.Site {
	data, ok := l.read(abs)
	if !ok {
		return nil
	}
	file := displayPath(abs)
	var mf MappingFile
	pos := decodeDocument(file, data, &mf, l.errs)
	if mf.Site.ID == "" {
		return nil
	}
	b := &siteBuild{
		loader: l, g: g, mf: &mf, pos: pos, dir: filepath.Dir(abs),
		s: &site.Site{
			ID: mf.Site.ID, Name: mf.Site.Name, File: file,
			Connections: map[string]*site.Connection{},
			Points:      map[string]*site.Point{}, Schedules: map[string]*site.Schedule{}, Calendars: map[string]*site.Calendar{},
		},
		conns:    map[string]*Connection{},
		pointPos: map[string]Pos{},
	}
	if !idPattern.MatchString(mf.Site.ID) {
		l.errs.add(pos.Key(&mf.Site, "id"), "site id %q must use lower case letters, digits, - and _", mf.Site.ID)
	}
	if mf.Site.TimeZone != nil {
		b.s.Location = mf.Site.TimeZone.Location
	}
	if b.s.Location == nil {
		b.s.Location = time.UTC
	}
	b.sources()
	b.connections()
	b.points()
	b.devices()
	b.heartbeats()
	b.checkSerial()
	b.calendars()
	b.schedules()
	profiles := b.profiles()
	b.spaces(profiles)
	b.security()
	b.s.KeepPointIDs()
	return b.s
}

func (b *siteBuild) sources() {
	seen := map[string]bool{}
	for i := range b.mf.Sources {
		r := &b.mf.Sources[i]
		if r.Source == "" {
			continue
		}
		if b.g.Source(r.Source) == nil {
			var ids []string
			for _, s := range b.g.Sources {
				ids = append(ids, s.ID)
			}
			msg := fmt.Sprintf("booking source %q is not defined in %s", r.Source, b.g.File)
			if s := suggest(r.Source, ids); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; add it under sources: there"
			}
			b.errs.add(b.pos.Key(r, "source"), "%s", msg)
			continue
		}
		if seen[r.Source] {
			b.errs.add(b.pos.Key(r, "source"), "booking source %q is listed twice", r.Source)
			continue
		}
		seen[r.Source] = true
		b.s.Sources = append(b.s.Sources, site.SourceRef{Source: r.Source, Precedence: r.Precedence})
	}
	slices.SortStableFunc(b.s.Sources, func(x, y site.SourceRef) int { return y.Precedence - x.Precedence })
}

func (b *siteBuild) fileExists(p Pos, path, what string) {
	if path == "" {
		return
	}
	if _, err := os.Stat(resolvePath(b.dir, path)); err != nil {
		b.errs.add(p, "%s %q: %v", what, path, unwrapPathErr(err))
	}
}

func (b *siteBuild) connections() {
	ids := map[string]Pos{}
	for i := range b.mf.Connections {
		c := &b.mf.Connections[i]
		if b.uniqueID(ids, c.ID, b.pos.Key(c, "id"), "connection") {
			b.conns[c.ID] = c
		}
		n := 0
		for _, set := range []bool{c.OPCUA != nil, c.Modbus != nil, c.Serial != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			b.errs.add(b.pos.Of(c), "connection %q must have exactly one of opcua, modbus or serial", c.ID)
			continue
		}
		sc := &site.Connection{ID: c.ID}
		if c.Serial != nil {
			sc.Serial = b.serialConn(c.ID, c.Serial)
		}
		if o := c.OPCUA; o != nil {
			b.opcuaConn(c.ID, o)
			sc.OPCUA = &site.OPCUAConnection{
				Endpoint: o.Endpoint, SecurityPolicy: string(o.SecurityPolicy), SecurityMode: string(o.SecurityMode),
				Username: o.Username, CertificateFile: o.CertificateFile, PrivateKeyFile: o.PrivateKeyFile,
			}
			if o.Password != nil {
				sc.OPCUA.Password = site.Secret(o.Password.Value())
			}
			if o.TrustedCertificatesDir != "" {
				sc.OPCUA.TrustDir = resolvePath(b.dir, o.TrustedCertificatesDir)
			}
			sc.OPCUA.TrustOnFirstUse, sc.OPCUA.RequestTimeout, sc.OPCUA.PublishingInterval, sc.OPCUA.StaleAfter = o.TrustOnFirstUse, o.RequestTimeout, o.PublishingInterval, o.StaleAfter
			sc.OPCUA.ApplicationURI, sc.OPCUA.UserCertificateFile, sc.OPCUA.UserPrivateKeyFile = o.ApplicationURI, o.UserCertificateFile, o.UserPrivateKeyFile
			sc.OPCUA.BackoffMin, sc.OPCUA.BackoffMax = o.BackoffMin, o.BackoffMax
			sc.OPCUA.WriteRate = o.WriteRate // 0: the gateway's default
			if b.pos.Has(o, "write_rate") && o.WriteRate <= 0 {
				b.errs.add(b.pos.Key(o, "write_rate"), "connection %q write_rate must be positive (write requests per second)", c.ID)
			}
		}
		if m := c.Modbus; m != nil {
			b.modbusConn(c.ID, m)
			sc.Modbus = &site.ModbusConnection{URL: m.URL, UnitID: 1}
			if m.UnitID != nil {
				sc.Modbus.UnitID = *m.UnitID
			}
			if s := m.Serial; s != nil {
				sc.Modbus.BaudRate, sc.Modbus.DataBits, sc.Modbus.StopBits, sc.Modbus.Parity = s.BaudRate, s.DataBits, s.StopBits, string(s.Parity)
			}
			if t := m.TLS; t != nil {
				sc.Modbus.CertificateFile, sc.Modbus.PrivateKeyFile, sc.Modbus.CAFile = t.CertificateFile, t.PrivateKeyFile, t.CAFile
			}
			mc := sc.Modbus
			mc.Timeout, mc.BackoffMin, mc.BackoffMax, mc.InterFrameDelay, mc.PollInterval = m.Timeout, m.BackoffMin, m.BackoffMax, m.InterFrameDelay, m.PollInterval
			mc.Retries, mc.MaxRegisters, mc.MaxBits, mc.ReadThroughGaps, mc.MaxGap, mc.WriteMultiple, mc.WriteRate = m.Retries, m.MaxRegisters, m.MaxBits, m.ReadThroughGaps, m.MaxGap, m.WriteMultiple, m.WriteRate
		}
		if c.ID != "" {
			b.s.Connections[c.ID] = sc
		}
	}
}

func (b *siteBuild) opcuaConn(id string, o *OPCUAConnection) {
	if u, err := url.Parse(o.Endpoint); o.Endpoint != "" && (err != nil || u.Scheme != "opc.tcp" || u.Host == "") {
		b.errs.add(b.pos.Key(o, "endpoint"), "connection %q endpoint %q must look like opc.tcp://host:4840/path", id, o.Endpoint)
	}
	if o.SecurityPolicy == "" {
		o.SecurityPolicy = "basic256sha256"
	}
	if o.SecurityMode == "" {
		o.SecurityMode = "sign_and_encrypt"
		if o.SecurityPolicy == "none" {
			o.SecurityMode = "none"
		}
	}
	if (o.SecurityPolicy == "none") != (o.SecurityMode == "none") {
		b.errs.add(b.pos.Of(o), "connection %q: security_policy %s does not go with security_mode %s; use none with none, or basic256sha256 with sign or sign_and_encrypt", id, o.SecurityPolicy, o.SecurityMode)
	}
	if (o.CertificateFile == "") != (o.PrivateKeyFile == "") {
		b.errs.add(b.pos.Of(o), "connection %q needs both certificate_file and private_key_file, or neither (then the gateway makes its own under state_dir/pki/own)", id)
	}
	if (o.UserCertificateFile == "") != (o.UserPrivateKeyFile == "") {
		b.errs.add(b.pos.Of(o), "connection %q needs both user_certificate_file and user_private_key_file, or neither", id)
	}
	if o.UserCertificateFile != "" && o.Username != "" {
		b.errs.add(b.pos.Key(o, "user_certificate_file"), "connection %q: log in with a user name or a user certificate, not both", id)
	}
	if o.SecurityPolicy == "none" && (o.Username != "" || o.UserCertificateFile != "") {
		b.errs.add(b.pos.Key(o, "security_policy"), "connection %q sends credentials over security_policy none; use basic256sha256 so they are encrypted", id)
	}
	if o.Password != nil && o.Username == "" {
		b.errs.add(b.pos.Key(o, "password"), "connection %q has a password but no username", id)
	}
	if o.Username != "" && o.Password == nil {
		b.errs.add(b.pos.Key(o, "username"), "connection %q has a username but no password; add password: ${ENV_VAR}", id)
	}
	b.fileExists(b.pos.Key(o, "user_certificate_file"), o.UserCertificateFile, "user_certificate_file")
	b.fileExists(b.pos.Key(o, "user_private_key_file"), o.UserPrivateKeyFile, "user_private_key_file")
	if o.UserCertificateFile != "" {
		o.UserCertificateFile, o.UserPrivateKeyFile = resolvePath(b.dir, o.UserCertificateFile), resolvePath(b.dir, o.UserPrivateKeyFile)
	}
	b.fileExists(b.pos.Key(o, "certificate_file"), o.CertificateFile, "certificate_file")
	b.fileExists(b.pos.Key(o, "private_key_file"), o.PrivateKeyFile, "private_key_file")
	if o.CertificateFile != "" {
		o.CertificateFile = resolvePath(b.dir, o.CertificateFile)
	}
	if o.PrivateKeyFile != "" {
		o.PrivateKeyFile = resolvePath(b.dir, o.PrivateKeyFile)
	}
}

func (b *siteBuild) modbusConn(id string, m *ModbusConnection) {
	u, err := url.Parse(m.URL)
	if m.URL == "" {
		return
	}
	p := b.pos.Key(m, "url")
	if err != nil {
		b.errs.add(p, "connection %q url %q: %v", id, m.URL, err)
		return
	}
	switch u.Scheme {
	case "tcp", "tcp+tls":
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
			b.errs.add(p, "connection %q url %q needs host:port, e.g. tcp://10.0.0.5:502", id, m.URL)
		}
		if u.Scheme == "tcp+tls" && m.TLS == nil {
			b.errs.add(p, "connection %q uses tcp+tls and needs a tls: block with certificate_file, private_key_file and ca_file", id)
		}
		if u.Scheme == "tcp" && m.TLS != nil {
			b.errs.add(b.pos.Key(m, "tls"), "connection %q has tls settings but url scheme tcp; use tcp+tls://", id)
		}
		if m.Serial != nil {
			b.errs.add(b.pos.Key(m, "serial"), "connection %q: serial settings apply to rtu:// only", id)
		}
	case "rtu":
		if u.Path == "" {
			b.errs.add(p, "connection %q url %q needs a serial device, e.g. rtu:///dev/ttyUSB0", id, m.URL)
		}
		if m.TLS != nil {
			b.errs.add(b.pos.Key(m, "tls"), "connection %q: tls applies to tcp+tls:// only", id)
		}
		if m.Serial == nil {
			m.Serial = &SerialSettings{}
		}
		s := m.Serial
		if s.BaudRate == 0 {
			s.BaudRate = 19200
		}
		if s.DataBits == 0 {
			s.DataBits = 8
		}
		if s.Parity == "" {
			s.Parity = "even"
		}
		if s.StopBits == 0 {
			s.StopBits = 1
		}
		if s.BaudRate < 300 || s.BaudRate > 921600 {
			b.errs.add(b.pos.Key(s, "baud_rate"), "connection %q baud_rate %d is not between 300 and 921600", id, s.BaudRate)
		}
		if s.DataBits != 7 && s.DataBits != 8 {
			b.errs.add(b.pos.Key(s, "data_bits"), "connection %q data_bits must be 7 or 8", id)
		}
		if s.StopBits != 1 && s.StopBits != 2 {
			b.errs.add(b.pos.Key(s, "stop_bits"), "connection %q stop_bits must be 1 or 2", id)
		}
	default:
		b.errs.add(p, "connection %q url %q: scheme must be tcp://, tcp+tls:// or rtu://", id, m.URL)
	}
	if t := m.TLS; t != nil {
		for _, f := range []struct{ key, path string }{{"certificate_file", t.CertificateFile}, {"private_key_file", t.PrivateKeyFile}, {"ca_file", t.CAFile}} {
			b.fileExists(b.pos.Key(t, f.key), f.path, f.key)
		}
		t.CertificateFile, t.PrivateKeyFile, t.CAFile = resolvePath(b.dir, t.CertificateFile), resolvePath(b.dir, t.PrivateKeyFile), resolvePath(b.dir, t.CAFile)
	}
	if m.UnitID == nil {
		one := uint8(1)
		m.UnitID = &one
	}
	if m.MaxRegisters != 0 && (m.MaxRegisters < 1 || m.MaxRegisters > 125) {
		b.errs.add(b.pos.Key(m, "max_registers"), "connection %q max_registers %d is not between 1 and 125 (the Modbus limit)", id, m.MaxRegisters)
	}
	if m.MaxBits != 0 && (m.MaxBits < 1 || m.MaxBits > 2000) {
		b.errs.add(b.pos.Key(m, "max_bits"), "connection %q max_bits %d is not between 1 and 2000 (the Modbus limit)", id, m.MaxBits)
	}
	if m.MaxGap != nil && *m.MaxGap < 0 {
		b.errs.add(b.pos.Key(m, "max_gap"), "connection %q max_gap must not be negative", id)
	}
	if m.Retries != nil && *m.Retries < 0 {
		b.errs.add(b.pos.Key(m, "retries"), "connection %q retries must not be negative", id)
	}
	if b.pos.Has(m, "write_rate") && m.WriteRate <= 0 {
		b.errs.add(b.pos.Key(m, "write_rate"), "connection %q write_rate must be positive (writes per second)", id)
	}
	if m.BackoffMin != 0 && m.BackoffMax != 0 && m.BackoffMax < m.BackoffMin {
		b.errs.add(b.pos.Key(m, "backoff_max"), "connection %q backoff_max %s is below backoff_min %s", id, m.BackoffMax, m.BackoffMin)
	}
	if m.InterFrameDelay != 0 && !strings.HasPrefix(m.URL, "rtu:") {
		b.errs.add(b.pos.Key(m, "inter_frame_delay"), "connection %q: inter_frame_delay applies to rtu:// only", id)
	}
}

// pointShape checks what a point says about itself; conn is its
// connection, or nil in a template.
func (l *loader) pointShape(p *Point, pos *Positions, conn *Connection) {
	at := pos.Of(p)
	switch {
	case conn != nil && conn.Serial != nil:
		if p.Modbus != nil || p.OPCUA != nil {
			l.errs.add(at, "point %q is on serial connection %q, whose points have no address (event lines set them); remove modbus:/opcua:", p.ID, conn.ID)
		}
	case p.Serial != nil:
		l.errs.add(pos.Key(p, "serial"), "point %q has serial: commands but its connection is not serial", p.ID)
	case (p.Modbus == nil) == (p.OPCUA == nil):
		l.errs.add(at, "point %q must have exactly one address: modbus or opcua", p.ID)
	}
	if conn != nil && conn.Serial == nil {
		if p.Modbus != nil && conn.Modbus == nil {
			l.errs.add(pos.Key(p, "modbus"), "point %q has a modbus address but connection %q is not modbus", p.ID, conn.ID)
		}
		if p.OPCUA != nil && conn.OPCUA == nil {
			l.errs.add(pos.Key(p, "opcua"), "point %q has an opcua address but connection %q is not opcua", p.ID, conn.ID)
		}
	}
	if p.Access == "" {
		p.Access = site.AccessRead
	}
	if m := p.Modbus; m != nil && p.Type != "" {
		bitTable := m.Table == site.Coil || m.Table == site.DiscreteInput
		switch {
		case bitTable && p.Type != site.TypeBool:
			l.errs.add(pos.Key(p, "type"), "point %q is a %s, which holds one bit; use type: bool", p.ID, m.Table)
		case !bitTable && p.Type == site.TypeBool && m.Bit == nil:
			l.errs.add(pos.Key(m, "table"), "point %q is a bool in a %s; add bit: 0-15 to say which bit", p.ID, m.Table)
		case m.Bit != nil && (p.Type != site.TypeBool || bitTable):
			l.errs.add(pos.Key(m, "bit"), "bit applies to bool points in holding or input registers only; remove it")
		case m.Bit != nil && (*m.Bit < 0 || *m.Bit > 15):
			l.errs.add(pos.Key(m, "bit"), "bit %d is not between 0 and 15", *m.Bit)
		}
		if p.Access == site.AccessWrite && (m.Table == site.DiscreteInput || m.Table == site.InputRegister) {
			l.errs.add(pos.Key(p, "access"), "point %q is in %s, which Modbus cannot write; use access: read or a coil/holding_register", p.ID, m.Table)
		}
		if m.Address != nil && int(*m.Address)+p.Type.Registers() > 65536 && !bitTable {
			l.errs.add(pos.Key(m, "address"), "point %q (%s) runs past register 65535", p.ID, p.Type)
		}
		if (m.WordOrder != "") && p.Type.Registers() == 1 {
			l.errs.add(pos.Key(m, "word_order"), "word_order applies to 32- and 64-bit types only; remove it")
		}
		if m.ByteOrder == "" {
			m.ByteOrder = site.BigEndian
		}
		if m.WordOrder == "" {
			m.WordOrder = site.BigEndian
		}
	}
	if p.Type == site.TypeBool {
		for _, k := range []string{"scale", "offset", "min", "max", "labels", "unit"} {
			if pos.Has(p, k) {
				l.errs.add(pos.Key(p, k), "%s does not apply to bool point %q; remove it", k, p.ID)
			}
		}
	}
	if p.Scale != nil && *p.Scale == 0 {
		l.errs.add(pos.Key(p, "scale"), "scale must not be 0")
	}
	if p.Min != nil && p.Max != nil && *p.Min > *p.Max {
		l.errs.add(pos.Key(p, "min"), "point %q has min %g above max %g", p.ID, *p.Min, *p.Max)
	}
	if len(p.Labels) > 0 && (p.Type == site.TypeFloat32 || p.Type == site.TypeFloat64) {
		l.errs.add(pos.Key(p, "labels"), "labels need an integer type, not %s", p.Type)
	}
	byValue := map[float64]string{}
	for _, name := range sortedKeys(p.Labels) {
		v := p.Labels[name]
		if other, dup := byValue[v]; dup {
			l.errs.add(pos.Key(&p.Labels, name), "labels %q and %q of point %q both mean %g; each value needs one name", other, name, p.ID, v)
		}
		byValue[v] = name
	}
	for name, v := range p.Labels {
		if !idPattern.MatchString(name) {
			l.errs.add(pos.Key(&p.Labels, name), "label %q must use lower case letters, digits, - and _", name)
		}
		if v != math.Trunc(v) {
			l.errs.add(pos.Key(&p.Labels, name), "label %q value %g must be a whole number", name, v)
		}
		if (p.Min != nil && v < *p.Min) || (p.Max != nil && v > *p.Max) {
			l.errs.add(pos.Key(&p.Labels, name), "label %q value %g is outside min/max", name, v)
		}
	}
	if p.OPCUA != nil && conn != nil && p.OPCUA.NodeID != "" {
		if _, err := ua.ParseNodeID(p.OPCUA.NodeID); err != nil {
			l.errs.add(pos.Key(p.OPCUA, "node_id"), "point %q node_id %q is not an OPC UA node id; write e.g. ns=2;s=Gym.AHU.Mode", p.ID, p.OPCUA.NodeID)
		}
	}
}

// sitePoint converts a checked point to the model.
func sitePoint(id, device, conn string, p *Point, unit uint8, offset int, prefix string) *site.Point {
	sp := &site.Point{
		ID: id, Device: device, Connection: conn, Description: p.Description, OnExternalChange: string(p.OnExternalChange),
		Type: p.Type, Access: p.Access, Unit: p.Unit, Scale: 1, Offset: p.Offset,
		Min: p.Min, Max: p.Max, Labels: p.Labels,
	}
	if p.Scale != nil {
		sp.Scale = *p.Scale
	}
	if m := p.Modbus; m != nil && m.Address != nil {
		a := &site.ModbusAddress{Table: m.Table, Address: uint16(int(*m.Address) + offset), Bit: -1, UnitID: unit, ByteOrder: m.ByteOrder, WordOrder: m.WordOrder}
		if m.Bit != nil {
			a.Bit = *m.Bit
		}
		if m.UnitID != nil {
			a.UnitID = *m.UnitID
		}
		sp.Modbus = a
	}
	if p.OPCUA != nil {
		sp.OPCUA = &site.OPCUAAddress{NodeID: prefix + p.OPCUA.NodeID}
	}
	if s := p.Serial; s != nil {
		sp.Serial = &site.SerialPoint{Command: s.Command, Commands: s.Commands, Vars: s.Vars, Ack: s.Ack, Nak: s.Nak,
			ReadBack: string(s.ReadBack), ConfirmTimeout: s.ConfirmTimeout}
	}
	return sp
}

func (b *siteBuild) connection(p Pos, id, owner string) *Connection {
	if id == "" {
		b.errs.add(p, "%s needs connection: one of the site's connections", owner)
		return nil
	}
	c, ok := b.conns[id]
	if !ok {
		var ids []string
		for k := range b.conns {
			ids = append(ids, k)
		}
		slices.Sort(ids)
		msg := fmt.Sprintf("%s uses connection %q, which is not defined", owner, id)
		if s := suggest(id, ids); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		} else {
			msg += fmt.Sprintf("; defined connections: %s", strings.Join(ids, ", "))
		}
		b.errs.add(p, "%s", msg)
	}
	return c
}

func (b *siteBuild) addPoint(sp *site.Point, p Pos) {
	if first, dup := b.pointPos[sp.ID]; dup {
		b.errs.add(p, "duplicate point id %q (first defined at %s); ids must be unique", sp.ID, first)
		return
	}
	b.pointPos[sp.ID] = p
	b.s.Points[sp.ID] = sp
}

func (b *siteBuild) points() {
	for i := range b.mf.Points {
		p := &b.mf.Points[i]
		if p.ID != "" && !idPattern.MatchString(p.ID) {
			b.errs.add(b.pos.Key(p, "id"), "point id %q must use lower case letters, digits, - and _", p.ID)
		}
		conn := b.connection(b.pos.Of(p), p.Connection, fmt.Sprintf("point %q", p.ID))
		b.pointShape(p, b.pos, conn)
		if p.ID == "" || conn == nil {
			continue
		}
		var unit uint8
		if conn.Modbus != nil && conn.Modbus.UnitID != nil {
			unit = *conn.Modbus.UnitID
		}
		b.addPoint(sitePoint(p.ID, "", p.Connection, p, unit, 0, ""), b.pos.Key(p, "id"))
	}
}

func (b *siteBuild) devices() {
	ids := map[string]Pos{}
	for i := range b.mf.Devices {
		d := &b.mf.Devices[i]
		b.uniqueID(ids, d.ID, b.pos.Key(d, "id"), "device")
		conn := b.connection(b.pos.Of(d), d.Connection, fmt.Sprintf("device %q", d.ID))
		t, ok := b.g.Templates[d.Template]
		if d.Template != "" && !ok {
			var names []string
			for k := range b.g.Templates {
				names = append(names, k)
			}
			slices.Sort(names)
			msg := fmt.Sprintf("device %q uses template %q, which is not defined", d.ID, d.Template)
			if s := suggest(d.Template, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += "; add its file to templates: in " + b.g.File
			}
			b.errs.add(b.pos.Key(d, "template"), "%s", msg)
		}
		if !ok || conn == nil || d.ID == "" {
			continue
		}
		var unit uint8
		if conn.Modbus != nil {
			unit = *conn.Modbus.UnitID
		}
		if d.UnitID != nil {
			unit = *d.UnitID
			if conn.Modbus == nil {
				b.errs.add(b.pos.Key(d, "unit_id"), "device %q: unit_id applies to modbus connections only", d.ID)
			}
		}
		if d.AddressOffset != 0 && conn.Modbus == nil {
			b.errs.add(b.pos.Key(d, "address_offset"), "device %q: address_offset applies to modbus connections only", d.ID)
		}
		if d.NodeIDPrefix != "" && conn.OPCUA == nil {
			b.errs.add(b.pos.Key(d, "node_id_prefix"), "device %q: node_id_prefix applies to opcua connections only", d.ID)
		}
		overrides := map[string]*PointOverride{}
		for j := range d.Overrides {
			o := &d.Overrides[j]
			if !slices.ContainsFunc(t.Points, func(p Point) bool { return p.ID == o.Point }) {
				b.errs.add(b.pos.Key(o, "point"), "override of point %q, which template %q does not have", o.Point, d.Template)
				continue
			}
			overrides[o.Point] = o
		}
		for j := range t.Points {
			tp := t.Points[j] // a copy: overrides must not leak into other devices
			if o := overrides[tp.ID]; o != nil {
				if o.Access != nil {
					tp.Access = *o.Access
				}
				if o.Min != nil {
					tp.Min = o.Min
				}
				if o.Max != nil {
					tp.Max = o.Max
				}
				if o.Description != "" {
					tp.Description = o.Description
				}
				if o.OnExternalChange != "" {
					tp.OnExternalChange = o.OnExternalChange
				}
				if tp.Min != nil && tp.Max != nil && *tp.Min > *tp.Max {
					b.errs.add(b.pos.Of(o), "override gives point %q min %g above max %g", tp.ID, *tp.Min, *tp.Max)
				}
				if o.Access != nil && *o.Access == site.AccessWrite && tp.Modbus != nil && (tp.Modbus.Table == site.DiscreteInput || tp.Modbus.Table == site.InputRegister) {
					b.errs.add(b.pos.Key(o, "access"), "point %q is in %s, which Modbus cannot write", tp.ID, tp.Modbus.Table)
				}
			}
			at := b.pos.Key(d, "template")
			if tp.Modbus != nil && conn.Modbus == nil || tp.OPCUA != nil && conn.OPCUA == nil {
				b.errs.add(at, "device %q: template %q point %q does not match the protocol of connection %q", d.ID, d.Template, tp.ID, conn.ID)
				continue
			}
			if tp.Modbus != nil && tp.Modbus.Address != nil {
				if a := int(*tp.Modbus.Address) + d.AddressOffset; a < 0 || a+tp.Type.Registers() > 65536 {
					b.errs.add(b.pos.Key(d, "address_offset"), "device %q: address_offset %d moves point %q to %d, outside 0-65535", d.ID, d.AddressOffset, tp.ID, a)
					continue
				}
			}
			sp := sitePoint(d.ID+"."+tp.ID, d.ID, d.Connection, &tp, unit, d.AddressOffset, d.NodeIDPrefix)
			if sp.OPCUA != nil {
				if _, err := ua.ParseNodeID(sp.OPCUA.NodeID); err != nil {
					b.errs.add(b.pos.Key(d, "node_id_prefix"), "device %q: node_id_prefix %q plus template node_id %q gives %q, which is not an OPC UA node id; write e.g. node_id_prefix: \"ns=2;s=Valby.Gym.AHU.\"", d.ID, d.NodeIDPrefix, tp.OPCUA.NodeID, sp.OPCUA.NodeID)
				}
			}
			b.addPoint(sp, b.pos.Key(d, "id"))
		}
	}
}

func (b *siteBuild) calendars() {
	ids := map[string]Pos{}
	for i := range b.mf.Calendars {
		c := &b.mf.Calendars[i]
		if !b.uniqueID(ids, c.ID, b.pos.Key(c, "id"), "calendar") {
			continue
		}
		sc := &site.Calendar{ID: c.ID}
		for j := range c.Days {
			d := &c.Days[j]
			var e site.ExceptionDay
			hasDate, hasFrom, hasTo := b.pos.Has(d, "date"), b.pos.Has(d, "from"), b.pos.Has(d, "to")
			switch {
			case hasDate && !hasFrom && !hasTo:
				if d.Date == nil {
					continue // already reported
				}
				e.From, e.To = d.Date.Date, d.Date.Date
			case !hasDate && hasFrom && hasTo:
				if d.From == nil || d.To == nil {
					continue
				}
				e.From, e.To = d.From.Date, d.To.Date
				if e.To.Before(e.From) {
					b.errs.add(b.pos.Key(d, "to"), "exception %q ends (%s) before it starts (%s)", d.Name, e.To, e.From)
				}
			default:
				b.errs.add(b.pos.Of(d), "exception day %q needs either date, or from and to", d.Name)
				continue
			}
			e.Name = d.Name
			for k := range d.Hours {
				h := &d.Hours[k]
				if h.From == nil || h.To == nil {
					continue
				}
				if h.To.Clock <= h.From.Clock {
					b.errs.add(b.pos.Key(h, "to"), "hours end %s must be after start %s", h.To.Clock, h.From.Clock)
				}
				e.Hours = append(e.Hours, site.Period{From: h.From.Clock, To: h.To.Clock})
			}
			sc.Days = append(sc.Days, e)
		}
		b.s.Calendars[c.ID] = sc
	}
}

var weekdays = map[Weekday]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

func (b *siteBuild) schedules() {
	ids := map[string]Pos{}
	for i := range b.mf.Schedules {
		sc := &b.mf.Schedules[i]
		if !b.uniqueID(ids, sc.ID, b.pos.Key(sc, "id"), "schedule") {
			continue
		}
		out := &site.Schedule{ID: sc.ID}
		for j := range sc.Weekly {
			w := &sc.Weekly[j]
			if w.From == nil || w.To == nil {
				continue
			}
			var wp site.WeeklyPeriod
			for _, d := range w.Days {
				wp.Days[weekdays[d]] = true
			}
			if len(w.Days) == 0 && b.pos.Has(w, "days") {
				b.errs.add(b.pos.Key(w, "days"), "days must name at least one weekday")
			}
			wp.From, wp.To = w.From.Clock, w.To.Clock
			if wp.To <= wp.From {
				b.errs.add(b.pos.Key(w, "to"), "weekly period ends at %s, not after its start %s; periods cannot pass midnight, split them in two", wp.To, wp.From)
			}
			out.Weekly = append(out.Weekly, wp)
		}
		for j := range sc.Exceptions {
			c, ok := b.s.Calendars[sc.Exceptions[j]]
			if !ok {
				b.errs.add(b.pos.Of(&sc.Exceptions[j]), "schedule %q uses calendar %q, which is not defined under calendars:", sc.ID, sc.Exceptions[j])
				continue
			}
			out.Exceptions = append(out.Exceptions, c)
		}
		b.s.Schedules[sc.ID] = out
	}
}

func (b *siteBuild) profiles() map[string]site.Profile {
	out := map[string]site.Profile{}
	ids := map[string]Pos{}
	for i := range b.mf.Profiles {
		p := &b.mf.Profiles[i]
		if !b.uniqueID(ids, p.ID, b.pos.Key(p, "id"), "profile") {
			continue
		}
		out[p.ID] = site.Profile{ID: p.ID, Lead: p.Lead, Lag: p.Lag, MergeGap: p.MergeGap, MinWindow: p.MinWindow}
	}
	return out
}

// heartbeats resolves the heartbeat points of connections, after every
// point is known.
func (b *siteBuild) heartbeats() {
	for i := range b.mf.Connections {
		c := &b.mf.Connections[i]
		hb := c.Heartbeat
		sc := b.s.Connections[c.ID]
		if hb == nil || sc == nil {
			continue
		}
		at := b.pos.Key(hb, "point")
		p := b.s.Points[hb.Point]
		switch {
		case p == nil:
			b.errs.add(at, "heartbeat point %q of connection %q is not defined%s", hb.Point, c.ID, didYouMean(hb.Point, keys(b.s.Points)))
			continue
		case p.Connection != c.ID:
			b.errs.add(at, "heartbeat point %q is on connection %q, not %q", hb.Point, p.Connection, c.ID)
			continue
		case !p.Writable():
			b.errs.add(at, "heartbeat point %q is not writable; add access: write to it", hb.Point)
			continue
		case p.Type == site.TypeBool || p.Type == site.TypeFloat32 || p.Type == site.TypeFloat64 || len(p.Labels) > 0 || p.Scale != 1 || p.Offset != 0 || p.Min != nil || p.Max != nil:
			b.errs.add(at, "heartbeat point %q must be a plain integer point (no labels, scale, offset or limits) to take a counter", hb.Point)
			continue
		}
		if b.pos.Has(hb, "period") && hb.Period < time.Second {
			b.errs.add(b.pos.Key(hb, "period"), "heartbeat period %s is too short; use 1s or more", hb.Period)
		}
		sc.Heartbeat, sc.HeartbeatPeriod = p, hb.Period
		if sc.HeartbeatPeriod == 0 {
			sc.HeartbeatPeriod = 30 * time.Second
		}
	}
}
