package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/site"
)

const defaultGateway = `sites: [site.yaml]
templates: [templates/*.yaml]
sources:
  - id: leisure
    ical: {file: feed.ics}
`

// TestMappingErrors loads every case in testdata/mappings and compares the
// errors with the case's errors.golden (regenerate with -update). Each
// case is a folder with site.yaml and optionally gateway.yaml, templates/
// and env (KEY=VALUE lines set for the load).
func TestMappingErrors(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", "testdata", "mappings"))
	require.NoError(t, err)
	cases, err := os.ReadDir(root)
	require.NoError(t, err)
	require.NotEmpty(t, cases)
	for _, c := range cases {
		if !c.IsDir() {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			src := filepath.Join(root, c.Name())
			dir := t.TempDir()
			require.NoError(t, os.CopyFS(dir, os.DirFS(src)))
			if _, err := os.Stat(filepath.Join(dir, "gateway.yaml")); err != nil {
				require.NoError(t, os.WriteFile(filepath.Join(dir, "gateway.yaml"), []byte(defaultGateway), 0o644))
			}
			if _, err := os.Stat(filepath.Join(dir, "templates")); err != nil {
				require.NoError(t, os.MkdirAll(filepath.Join(dir, "templates"), 0o755))
				require.NoError(t, os.WriteFile(filepath.Join(dir, "templates", "none.yaml"), []byte("template: {id: none}\npoints: []\n"), 0o644))
			}
			require.NoError(t, os.WriteFile(filepath.Join(dir, "feed.ics"), nil, 0o644))
			if env, err := os.ReadFile(filepath.Join(src, "env")); err == nil {
				for _, line := range strings.Split(strings.TrimSpace(string(env)), "\n") {
					k, v, _ := strings.Cut(line, "=")
					t.Setenv(k, v)
				}
			}
			t.Chdir(dir)
			_, err := Load("gateway.yaml")
			golden := filepath.Join(src, "errors.golden")
			got := ""
			if err != nil {
				got = err.Error() + "\n"
			}
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, rerr := os.ReadFile(golden)
			require.NoError(t, rerr, "missing %s; run with -update", golden)
			require.Equal(t, string(want), got)
			if got != "" {
				for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
					require.Regexp(t, `^[^:]+\.yaml:\d+(:\d+)?: `, line, "every error names file:line:column")
				}
			}
		})
	}
}

// TestShippedFilesLoad loads every gateway config in configs/ and so every
// mapping and template they include.
func TestShippedFilesLoad(t *testing.T) {
	configs, err := filepath.Glob(filepath.Join("..", "..", "configs", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, configs)
	included := map[string]bool{}
	for _, c := range configs {
		g, err := Load(c)
		require.NoError(t, err, c)
		for _, s := range g.Sites {
			abs, _ := filepath.Abs(s.File)
			included[abs] = true
		}
	}
	mappings, err := filepath.Glob(filepath.Join("..", "..", "mappings", "*.yaml"))
	require.NoError(t, err)
	for _, m := range mappings {
		abs, _ := filepath.Abs(m)
		require.True(t, included[abs], "%s is not included by any config in configs/; every shipped mapping must be loaded by a test", m)
	}
}

func TestReferenceSiteModel(t *testing.T) {
	g, err := Load(filepath.Join("..", "..", "configs", "season.yaml"))
	require.NoError(t, err)
	s := g.Site("valby-skole")
	require.NotNil(t, s)
	require.Equal(t, "Europe/Copenhagen", s.Location.String())
	require.Equal(t, []site.SourceRef{{Source: "timetable", Precedence: 20}, {Source: "leisure", Precedence: 10}}, s.Sources)

	mode := s.Points["gym_ahu.mode"]
	require.NotNil(t, mode, "template points are instantiated as <device>.<point>")
	require.Equal(t, "ns=2;s=Valby.Gym.AHU.Mode", mode.OPCUA.NodeID)
	require.Equal(t, site.AccessWrite, mode.Access)
	require.Equal(t, 2.0, mode.Labels["comfort"])

	// Device overrides change one site's copy only.
	require.Equal(t, 22.0, *s.Points["wing_b_ahu.setpoint"].Max)
	require.Equal(t, 24.0, *s.Points["gym_ahu.setpoint"].Max)

	sp := s.Points["room12.heat_setpoint"]
	require.Equal(t, uint8(12), sp.Modbus.UnitID)
	require.Equal(t, 0.1, sp.Scale)
	require.Equal(t, uint16(1), sp.Modbus.Address)

	gym := s.Space("gym")
	require.Equal(t, "gym_wing", gym.Parent.ID)
	require.Len(t, gym.Bindings, 3)
	require.Equal(t, "hall", gym.Profile.ID)
	lights := gym.Bindings[2]
	require.Equal(t, "gym_lights_enable", lights.Point.ID)
	require.Equal(t, 15*60.0, lights.Lead.Seconds(), "binding lead overrides the profile's")
	require.Equal(t, 3600.0, gym.Bindings[0].Lead.Seconds(), "profile lead applies by default")
	require.Equal(t, site.Value{Num: 2, Label: "comfort"}, gym.Bindings[0].Occupied)

	o := g.Site("oerestad-skole")
	require.Equal(t, uint16(40), o.Points["hall_ventilation_stage"].Modbus.Address)
	require.Equal(t, 1, o.Points["hall_lights_zone_b"].Modbus.Bit)
	require.Equal(t, site.LittleEndian, o.Points["hall_supply_setpoint"].Modbus.WordOrder)
	require.Equal(t, uint8(22), o.Points["workshop.mode"].Modbus.UnitID)
}

func TestSecretNeverPrinted(t *testing.T) {
	t.Setenv("BMSGW_TEST_TOKEN", "s3cr3t-value")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "gw.yaml"), []byte(`sites: [s.yaml]
sources:
  - id: feed
    ical: {url: "https://booking.example/feed.ics"}
    headers: {Authorization: "${BMSGW_TEST_TOKEN}"}
`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s.yaml"), []byte("site: {id: s, time_zone: Europe/Copenhagen}\n"), 0o644))
	g, err := Load(filepath.Join(dir, "gw.yaml"))
	require.NoError(t, err)
	sec := g.Sources[0].Headers["Authorization"]
	require.Equal(t, "s3cr3t-value", sec.Value())
	for _, s := range []string{sec.String(), sec.GoString(), sec.LogValue().String()} {
		require.NotContains(t, s, "s3cr3t")
	}
	b, err := sec.MarshalJSON()
	require.NoError(t, err)
	require.NotContains(t, string(b), "s3cr3t")
}
