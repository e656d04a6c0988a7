package booking

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bmsgw/bmsgw/internal/site"
)

func TestMergeForSite(t *testing.T) {
	s := &site.Site{
		Spaces:  []*site.Space{{ID: "gym", Resources: []string{"gym-1"}}},
		Sources: []site.SourceRef{{Source: "leisure", Precedence: 1}, {Source: "school", Precedence: 2}},
	}
	bySource := map[string][]Booking{
		"leisure": {bk("club", "gym-1", 18, 20, Confirmed), bk("elsewhere", "pool-1", 18, 20, Confirmed)},
		"school":  {bk("exam", "gym-1", 19, 21, Confirmed)},
		"other":   {bk("not-this-site", "gym-1", 10, 11, Confirmed)},
	}
	r := MergeForSite(s, bySource)
	ids := map[string]Status{}
	for _, b := range r.Bookings {
		ids[b.ID] = b.Status
	}
	require.Equal(t, map[string]Status{"club": Superseded, "exam": Confirmed}, ids,
		"only the site's resources and sources; the higher precedence wins")
	require.Len(t, r.Conflicts, 1)
	require.Equal(t, "gym-1", r.Conflicts[0].Resource)
}
