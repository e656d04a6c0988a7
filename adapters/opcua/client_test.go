package opcua

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/adapters/opcua/opcuasim"
	"github.com/bmsgw/bmsgw/internal/control"
	"github.com/bmsgw/bmsgw/internal/site"
)

func TestNewValidatesOptions(t *testing.T) {
	dir := t.TempDir()
	cert, key, err := EnsureCertificate(dir, "urn:bmsgw:test")
	require.NoError(t, err)
	tests := []struct {
		name string
		opts Options
		want []string // substrings of the error; none: valid
	}{
		{"none", Options{Endpoint: "opc.tcp://127.0.0.1:4840", SecurityPolicy: PolicyNone}, nil},
		{"secure", Options{Endpoint: "opc.tcp://h:4840", CertificateFile: cert, PrivateKeyFile: key, TrustDir: dir, Username: "u", Password: "p"}, nil},
		{"bad endpoint", Options{Endpoint: "http://h", SecurityPolicy: PolicyNone}, []string{`endpoint "http://h"`}},
		{"secure defaults need files", Options{Endpoint: "opc.tcp://h:1"}, []string{"needs certificate_file", "needs trust_dir"}},
		{"policy and mode disagree", Options{Endpoint: "opc.tcp://h:1", SecurityPolicy: PolicyNone, SecurityMode: ModeSign}, []string{"security mode sign needs"}},
		{"unknown policy", Options{Endpoint: "opc.tcp://h:1", SecurityPolicy: "basic128", SecurityMode: ModeNone}, []string{`security policy "basic128"`}},
		{"password in clear", Options{Endpoint: "opc.tcp://h:1", SecurityPolicy: PolicyNone, Username: "u", Password: "p"}, []string{"in the clear"}},
		{"password alone", Options{Endpoint: "opc.tcp://h:1", SecurityPolicy: PolicyNone, Password: "p"}, []string{"password needs a user name"}},
		{"tofu without folder", Options{Endpoint: "opc.tcp://h:1", SecurityPolicy: PolicyNone, TrustOnFirstUse: true}, []string{"trust_on_first_use needs trust_dir"}},
		{"backoff", Options{Endpoint: "opc.tcp://h:1", SecurityPolicy: PolicyNone, BackoffMin: time.Minute, BackoffMax: time.Second}, []string{"backoff_max 1s is below backoff_min 1m0s"}},
		{"uri mismatch", Options{Endpoint: "opc.tcp://h:1", SecurityPolicy: PolicyNone, CertificateFile: cert, PrivateKeyFile: key, ApplicationURI: "urn:other"}, []string{"application URI urn:other is not in certificate"}},
		{"missing key", Options{Endpoint: "opc.tcp://h:1", SecurityPolicy: PolicyNone, CertificateFile: cert, PrivateKeyFile: dir + "/nope.pem"}, []string{"read private key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.opts, nil)
			if len(tt.want) == 0 {
				require.NoError(t, err)
				require.NoError(t, c.Close())
				return
			}
			require.Error(t, err)
			require.Nil(t, c)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
	var nilClient *Client
	require.NoError(t, nilClient.Close(), "Close after a failed New")
}

func TestReadWriteAllTypes(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name  string
		p     *site.Point
		write float64
		raw   any // what the server must hold afterwards
		set   float64
		read  float64 // engineering value read after the server is set to set
	}{
		{"bool", point("bool", site.TypeBool, "ns=2;s=T.Bool"), 1, true, 0, 0},
		{"int16 scaled", &site.Point{ID: "int16", Type: site.TypeInt16, Access: site.AccessWrite, Scale: 0.1, OPCUA: &site.OPCUAAddress{NodeID: "ns=2;s=T.Int16"}}, 21.5, int16(215), -123, -12.3},
		{"uint16", point("uint16", site.TypeUint16, "ns=2;s=T.UInt16"), 65535, uint16(65535), 7, 7},
		{"int32 offset", &site.Point{ID: "int32", Type: site.TypeInt32, Access: site.AccessWrite, Scale: 1, Offset: -40, Min: f(-40), OPCUA: &site.OPCUAAddress{NodeID: "ns=2;s=T.Int32"}}, 20, int32(60), 0, -40},
		{"uint32", point("uint32", site.TypeUint32, "ns=3;i=1001"), 4e9, uint32(4e9), 1, 1},
		{"float32", point("float32", site.TypeFloat32, "ns=2;s=T.Float"), 21.25, float32(21.25), 0.5, 0.5},
		{"float64 scaled", &site.Point{ID: "float64", Type: site.TypeFloat64, Access: site.AccessWrite, Scale: 2, Offset: 1, OPCUA: &site.OPCUAAddress{NodeID: "ns=2;s=T.Double"}}, 5, 2.0, 10, 21},
	}
	var pts []*site.Point
	for _, tt := range tests {
		pts = append(pts, tt.p)
	}
	sim := startSim(t, pts, opcuasim.Options{})
	c := newClient(t, simOptions(sim.Endpoint()), newTestLogger(t).Logger)
	waitReadable(t, c, pts[0])

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := c.Write(t.Context(), []control.Write{{Point: tt.p, Value: tt.write}})
			require.NoError(t, errs[0])
			got, err := sim.Get(tt.p.OPCUA.NodeID)
			require.NoError(t, err)
			require.Equal(t, tt.raw, got, "typed raw value on the server")

			r := c.Read(t.Context(), []*site.Point{tt.p})
			require.NoError(t, r[0].Err)
			require.InDelta(t, tt.write, r[0].Value, 1e-9, "read back")

			before := time.Now()
			require.NoError(t, sim.Set(tt.p.OPCUA.NodeID, tt.set))
			r = c.Read(t.Context(), []*site.Point{tt.p})
			require.NoError(t, r[0].Err)
			require.InDelta(t, tt.read, r[0].Value, 1e-9)
			require.WithinDuration(t, before, r[0].Time, time.Second, "source timestamp")
		})
	}
}

func TestBatchedWriteIsOneRequest(t *testing.T) {
	pts := floatPoints(1000)
	sim := startSim(t, pts, opcuasim.Options{})
	c := newClient(t, simOptions(sim.Endpoint()), nil)
	waitReadable(t, c, pts[0])

	ws := make([]control.Write, len(pts))
	for i, p := range pts {
		ws[i] = control.Write{Point: p, Value: float64(i) / 4}
	}
	before := sim.Stats()
	for i, err := range c.Write(t.Context(), ws) {
		require.NoError(t, err, "write %d", i)
	}
	after := sim.Stats()
	require.Equal(t, 1, after.WriteRequests-before.WriteRequests, "one WriteRequest")
	require.Equal(t, 1000, after.WriteNodes-before.WriteNodes)

	rs := c.Read(t.Context(), pts)
	require.Equal(t, 1, sim.Stats().ReadRequests-after.ReadRequests, "one ReadRequest")
	for i, r := range rs {
		require.NoError(t, r.Err)
		require.Equal(t, pts[i].ID, r.Point)
		require.Equal(t, float64(i)/4, r.Value)
	}
}

func TestChunksByServerLimits(t *testing.T) {
	pts := floatPoints(25)
	sim := startSim(t, pts, opcuasim.Options{MaxNodesPerRead: 7, MaxNodesPerWrite: 10, MaxMonitoredItemsPerCall: 4})
	c := newClient(t, simOptions(sim.Endpoint()), nil)
	waitReadable(t, c, pts[0])

	ws := make([]control.Write, len(pts))
	for i, p := range pts {
		ws[i] = control.Write{Point: p, Value: float64(i)}
	}
	before := sim.Stats()
	for _, err := range c.Write(t.Context(), ws) {
		require.NoError(t, err)
	}
	rs := c.Read(t.Context(), pts)
	for i, r := range rs {
		require.NoError(t, r.Err)
		require.Equal(t, float64(i), r.Value)
	}
	after := sim.Stats()
	require.Equal(t, 3, after.WriteRequests-before.WriteRequests, "25 writes in chunks of 10")
	require.Equal(t, 4, after.ReadRequests-before.ReadRequests, "25 reads in chunks of 7")

	out := watch(t, c, pts)
	want := map[string]float64{}
	for i, p := range pts {
		want[p.ID] = float64(i)
	}
	for len(want) > 0 {
		r := expect(t, out, "initial values", func(r control.Reading) bool { return r.Err == nil })
		v, ok := want[r.Point]
		require.True(t, ok, "one initial reading of %s", r.Point)
		require.Equal(t, v, r.Value)
		delete(want, r.Point)
	}
	require.Equal(t, 7, sim.Stats().MonitorRequests-after.MonitorRequests, "25 items in calls of 4")
}

func TestGuardRails(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	readOnly := point("ro", site.TypeFloat64, "ns=2;s=G.RO")
	readOnly.Access = site.AccessRead
	limited := point("lim", site.TypeFloat64, "ns=2;s=G.Lim")
	limited.Min, limited.Max = f(5), f(30)
	mode := point("mode", site.TypeUint16, "ns=2;s=G.Mode")
	mode.Labels = map[string]float64{"off": 0, "comfort": 2}
	flag := point("flag", site.TypeBool, "ns=2;s=G.Flag")
	small := &site.Point{ID: "small", Type: site.TypeInt16, Access: site.AccessWrite, Scale: 0.1, OPCUA: &site.OPCUAAddress{NodeID: "ns=2;s=G.Small"}}
	ok := point("ok", site.TypeFloat64, "ns=2;s=G.OK")
	pts := []*site.Point{readOnly, limited, mode, flag, small, ok}
	sim := startSim(t, pts, opcuasim.Options{})
	c := newClient(t, simOptions(sim.Endpoint()), nil)
	waitReadable(t, c, ok)

	tests := []struct {
		w    control.Write
		want error
	}{
		{control.Write{Point: readOnly, Value: 1}, control.ErrNotWritable},
		{control.Write{Point: limited, Value: 4.9}, control.ErrOutOfRange},
		{control.Write{Point: limited, Value: 30.1}, control.ErrOutOfRange},
		{control.Write{Point: mode, Value: 1}, control.ErrOutOfRange},
		{control.Write{Point: flag, Value: 2}, control.ErrOutOfRange},
		{control.Write{Point: small, Value: 5000}, control.ErrOutOfRange}, // raw 50000 > int16
		{control.Write{Point: limited, Value: math.NaN()}, control.ErrOutOfRange},
		{control.Write{Point: ok, Value: 7}, nil},
	}
	ws := make([]control.Write, len(tests))
	for i, tt := range tests {
		ws[i] = tt.w
	}
	before := sim.Stats()
	errs := c.Write(t.Context(), ws)
	for i, tt := range tests {
		if tt.want == nil {
			require.NoError(t, errs[i])
			continue
		}
		require.ErrorIs(t, errs[i], tt.want, "write %d to %s", i, tt.w.Point.ID)
	}
	after := sim.Stats()
	require.Equal(t, 1, after.WriteRequests-before.WriteRequests)
	require.Equal(t, 1, after.WriteNodes-before.WriteNodes, "only the allowed write went out")
	for _, p := range pts[:5] {
		v, err := sim.Float(p.OPCUA.NodeID)
		require.NoError(t, err)
		require.Zero(t, v, "%s untouched", p.ID)
	}
}

func TestPerNodeErrors(t *testing.T) {
	good := point("good", site.TypeFloat64, "ns=2;s=E.Good")
	simSide := []*site.Point{good, point("f32", site.TypeFloat32, "ns=2;s=E.F32")}
	sim := startSim(t, simSide, opcuasim.Options{})
	c := newClient(t, simOptions(sim.Endpoint()), nil)
	waitReadable(t, c, good)

	missing := point("missing", site.TypeFloat64, "ns=2;s=E.Missing")
	badNS := point("badns", site.TypeFloat64, "ns=9;s=E.Good")
	wrongType := point("wrong", site.TypeFloat64, "ns=2;s=E.F32") // the server holds a Float
	syntax := point("syntax", site.TypeFloat64, "ns=two;s=X")

	rs := c.Read(t.Context(), []*site.Point{missing, good, syntax, badNS})
	require.ErrorIs(t, rs[0].Err, ErrInvalidNode)
	require.ErrorIs(t, rs[0].Err, ua.StatusBadNodeIDUnknown)
	var se *StatusError
	require.ErrorAs(t, rs[0].Err, &se)
	require.Equal(t, "ns=2;s=E.Missing", se.NodeID)
	require.NoError(t, rs[1].Err)
	require.ErrorContains(t, rs[2].Err, `node id "ns=two;s=X"`)
	require.ErrorIs(t, rs[3].Err, ErrInvalidNode)

	errs := c.Write(t.Context(), []control.Write{{Point: wrongType, Value: 1}, {Point: good, Value: 2}, {Point: missing, Value: 3}, {Point: badNS, Value: 4}})
	require.ErrorIs(t, errs[0], ua.StatusBadTypeMismatch)
	require.NoError(t, errs[1])
	require.ErrorIs(t, errs[2], ErrInvalidNode)
	require.ErrorIs(t, errs[3], ErrInvalidNode, "a missing namespace must not crash the simulator")
	require.True(t, sim.Running())
	require.True(t, c.States()[0].Up, "per-node errors do not take the device down")
}

func TestReadReconnectsAfterRestart(t *testing.T) {
	p := point("p", site.TypeFloat64, "ns=2;s=R.P")
	sim := startSim(t, []*site.Point{p}, opcuasim.Options{})
	c := newClient(t, simOptions(sim.Endpoint()), nil)
	waitReadable(t, c, p)
	st := c.States()
	require.Len(t, st, 1)
	require.True(t, st[0].Up)
	require.Equal(t, "sim", st[0].Device)
	upSince := st[0].Since

	require.NoError(t, sim.Stop())
	r := c.Read(t.Context(), []*site.Point{p})
	require.Error(t, r[0].Err)
	st = c.States()
	require.False(t, st[0].Up)
	require.NotEmpty(t, st[0].LastError)
	require.True(t, st[0].Since.After(upSince))

	require.NoError(t, sim.Set("ns=2;s=R.P", 8))
	require.NoError(t, sim.Start(t.Context()))
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		r := c.Read(t.Context(), []*site.Point{p})
		assert.NoError(ct, r[0].Err)
		assert.Equal(ct, 8.0, r[0].Value)
	}, 10*time.Second, 10*time.Millisecond)
	require.True(t, c.States()[0].Up)

	// A connection dropped under an open session costs one retry inside
	// Read, not an error.
	sim.DropConnections()
	r = c.Read(t.Context(), []*site.Point{p})
	require.NoError(t, r[0].Err)
}

func TestCloseIsFinal(t *testing.T) {
	p := point("p", site.TypeFloat64, "ns=2;s=C.P")
	sim := startSim(t, []*site.Point{p}, opcuasim.Options{})
	c, err := New(simOptions(sim.Endpoint()), nil)
	require.NoError(t, err)
	waitReadable(t, c, p)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	r := c.Read(t.Context(), []*site.Point{p})
	require.ErrorIs(t, r[0].Err, ErrClosed)
	require.ErrorIs(t, c.Watch(t.Context(), []*site.Point{p}, make(chan control.Reading, 1)), ErrClosed)
}

func TestEndpointSelection(t *testing.T) {
	p := point("p", site.TypeFloat64, "ns=2;s=S.P")
	sim := startSim(t, []*site.Point{p}, opcuasim.Options{})
	dir := t.TempDir()
	cert, key, err := EnsureCertificate(dir, "urn:bmsgw:test")
	require.NoError(t, err)
	opts := simOptions(sim.Endpoint())
	opts.SecurityPolicy, opts.SecurityMode = PolicyBasic256Sha256, ModeSignAndEncrypt
	opts.CertificateFile, opts.PrivateKeyFile, opts.TrustDir = cert, key, dir
	c := newClient(t, opts, nil)
	r := c.Read(t.Context(), []*site.Point{p})
	require.ErrorIs(t, r[0].Err, ErrNoEndpoint)
	require.ErrorContains(t, r[0].Err, "offers no endpoint with security basic256sha256/sign_and_encrypt; it offers none/none")
	require.False(t, c.States()[0].Up)

	// Within the backoff, callers fail fast with the last error.
	r = c.Read(t.Context(), []*site.Point{p})
	require.ErrorIs(t, r[0].Err, ErrNotConnected)
	require.ErrorIs(t, r[0].Err, ErrNoEndpoint)
}

func TestStatusErrorClassification(t *testing.T) {
	tests := []struct {
		err     error
		conn    bool
		invalid bool
	}{
		{ua.StatusBadTimeout, true, false},
		{ua.StatusBadSessionIDInvalid, true, false},
		{ua.StatusBadTooManyOperations, false, false},
		{errors.New("sechan: secure channel not open."), true, false},
		{&StatusError{NodeID: "ns=2;s=X", Code: ua.StatusBadNodeIDUnknown}, false, true},
		{&StatusError{NodeID: "ns=2;s=X", Code: ua.StatusBadTypeMismatch}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			require.Equal(t, tt.conn, connectionError(tt.err))
			require.Equal(t, tt.invalid, errors.Is(tt.err, ErrInvalidNode))
		})
	}
}
