package booking

import "github.com/bmsgw/bmsgw/internal/site"

// MergeForSite merges the bookings of s's own resources from its sources
// (bySource: each source's bookings by source id), with the precedence
// the site gives each source, so that conflicts are reported for the site
// they concern.
func MergeForSite(s *site.Site, bySource map[string][]Booking) Result {
	resources := map[string]bool{}
	for _, sp := range s.Spaces {
		for _, r := range sp.Resources {
			resources[r] = true
		}
	}
	var in []Input
	for _, ref := range s.Sources {
		var own []Booking
		for _, b := range bySource[ref.Source] {
			if resources[b.Resource] {
				own = append(own, b)
			}
		}
		in = append(in, Input{Source: ref.Source, Precedence: ref.Precedence, Bookings: own})
	}
	return Merge(in)
}
