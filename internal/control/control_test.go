package control

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/site"
)

func ptr(f float64) *float64 { return &f }

func TestCheckWrite(t *testing.T) {
	setpoint := &site.Point{ID: "sp", Type: site.TypeInt16, Access: site.AccessWrite, Scale: 0.1, Min: ptr(14), Max: ptr(24)}
	mode := &site.Point{ID: "mode", Type: site.TypeUint16, Access: site.AccessWrite, Scale: 1, Labels: map[string]float64{"economy": 1, "comfort": 2}}
	lights := &site.Point{ID: "l", Type: site.TypeBool, Access: site.AccessWrite, Scale: 1}
	sensor := &site.Point{ID: "t", Type: site.TypeFloat32, Access: site.AccessRead, Scale: 1}
	for _, tc := range []struct {
		name string
		w    Write
		want error
	}{
		{"within limits", Write{setpoint, 21}, nil},
		{"at the limit", Write{setpoint, 24}, nil},
		{"above max", Write{setpoint, 24.5}, ErrOutOfRange},
		{"below min", Write{setpoint, 5}, ErrOutOfRange},
		{"a label", Write{mode, 2}, nil},
		{"not a label", Write{mode, 3}, ErrOutOfRange},
		{"bool true", Write{lights, 1}, nil},
		{"bool 2", Write{lights, 2}, ErrOutOfRange},
		{"read-only point", Write{sensor, 20}, ErrNotWritable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckWrite(tc.w)
			if tc.want == nil {
				require.NoError(t, err)
			} else {
				require.True(t, errors.Is(err, tc.want), "got %v", err)
			}
		})
	}
}

func TestSameComparesAsTheDeviceStores(t *testing.T) {
	tenths := &site.Point{Type: site.TypeInt16, Scale: 0.1}
	require.True(t, same(tenths, 21.0, 21.04), "within half a step of the scale")
	require.False(t, same(tenths, 21.0, 21.1))
	f32 := &site.Point{Type: site.TypeFloat32, Scale: 1}
	require.True(t, same(f32, 20.5, float64(float32(20.5))))
	require.False(t, same(f32, 20.5, 20.6))
}

func TestScaledClock(t *testing.T) {
	origin := time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)
	c := NewScaledClock(origin, 3600)
	start := time.Now()
	tm := c.NewTimer(time.Hour) // one real second
	defer tm.Stop()
	<-tm.C()
	real := time.Since(start)
	require.Less(t, real, 3*time.Second)
	require.GreaterOrEqual(t, real, 900*time.Millisecond)
	require.False(t, c.Now().Before(origin.Add(time.Hour)), "an hour of clock time has passed")
}
