package energy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/energy"
	"github.com/bmsgw/bmsgw/internal/site"
)

func TestSpecOf(t *testing.T) {
	require.Nil(t, energy.SpecOf(&site.Site{ID: "s"}), "no energy: section")
	gym := &site.Space{ID: "gym"}
	lending := &site.Schedule{ID: "lending"}
	s := &site.Site{ID: "s", Energy: &site.Energy{Lending: lending, Spaces: []site.EnergySpace{{
		Space: gym, HeatingKW: 30, LightingKW: 8,
		Heating: []*site.Point{{ID: "ahu.mode"}, {ID: "ahu.setpoint"}}, Lighting: []*site.Point{{ID: "lights"}},
	}}}}
	require.Equal(t, &energy.Spec{Site: s, Lending: lending, Spaces: []energy.SpaceSpec{{
		Space: "gym", HeatingKW: 30, LightingKW: 8, Heating: []string{"ahu.mode", "ahu.setpoint"}, Lighting: []string{"lights"},
	}}}, energy.SpecOf(s))
}
