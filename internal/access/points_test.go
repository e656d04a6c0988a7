package access_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/access"
	"github.com/bmsgw/bmsgw/internal/booking"
)

func TestPointSchedule(t *testing.T) {
	bs := []booking.Booking{
		bk("volley-1", "res-gym", "valby-volley", at(0, 14, 0), at(0, 16, 0)), // split at 15:00: one period
		bk("volley-2", "res-gym", "valby-volley", at(1, 19, 0), at(1, 21, 0)),
		bk("chess-1", "res-gym", "chess", at(0, 19, 0), at(0, 21, 0)),
	}
	gs := access.Grants(spec(0), bs, horizonFrom, horizonTo)
	mapping := []access.PointMap{
		{Group: "G1041", Door: "gym_entrance", Point: "gym_entrance_g1041"},
		{Group: "G1041", Door: "gym_side", Point: "gym_side_g1041"},
		{Group: "org-chess", Door: "gym_entrance", Point: "gym_entrance_chess"},
		{Group: "G2000", Door: "gym_entrance", Point: "gym_entrance_g2000"},
	}
	require.NoError(t, access.ValidatePoints(mapping))
	ps := access.PointSchedule(gs, mapping)
	require.Equal(t, []access.Interval{
		{From: at(0, 13, 45), To: at(0, 16, 15)},
		{From: at(1, 18, 45), To: at(1, 21, 15)},
	}, ps["gym_entrance_g1041"])
	require.Equal(t, ps["gym_entrance_g1041"], ps["gym_side_g1041"])
	require.Equal(t, []access.Interval{{From: at(0, 18, 45), To: at(0, 21, 15)}}, ps["gym_entrance_chess"])
	v, ok := ps["gym_entrance_g2000"]
	require.True(t, ok, "a point without grants is listed, to be driven to 0")
	require.Empty(t, v)
	require.Len(t, ps, 4)

	t.Run("two doors on one point are joined", func(t *testing.T) {
		ps := access.PointSchedule(gs, []access.PointMap{
			{Group: "G1041", Door: "gym_entrance", Point: "gym_g1041"},
			{Group: "G1041", Door: "gym_side", Point: "gym_g1041"},
		})
		require.Equal(t, []access.Interval{
			{From: at(0, 13, 45), To: at(0, 16, 15)},
			{From: at(1, 18, 45), To: at(1, 21, 15)},
		}, ps["gym_g1041"])
	})
}

func TestValidatePoints(t *testing.T) {
	err := access.ValidatePoints([]access.PointMap{
		{Group: "G1", Door: "d", Point: "p"},
		{Group: "G1", Door: "d", Point: "p"},
		{Group: "G1", Point: "q"},
	})
	require.ErrorContains(t, err, `points[1]: group "G1" at door "d" is mapped to point "p" twice`)
	require.ErrorContains(t, err, "points[2]: group, door and point are all required")
}
