package localapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/bmsgw/bmsgw/internal/security"
)

// RoundRunner is implemented by a Backend that runs virtual patrol
// rounds on demand (POST /v1/round/{site}).
type RoundRunner interface {
	Round(ctx context.Context, site string) (security.RoundReport, error)
}

// RoundReport is a patrol round as the API returns it.
type RoundReport struct {
	Site     string       `json:"site"`
	At       time.Time    `json:"at"`
	Checks   []RoundCheck `json:"checks"`
	Findings int          `json:"findings"`
}

// RoundCheck is one thing a round checked.
type RoundCheck struct {
	Kind    string    `json:"kind"`
	Subject string    `json:"subject"`
	Space   string    `json:"space,omitempty"`
	Points  []string  `json:"points,omitempty"`
	Want    string    `json:"want,omitempty"`
	Got     string    `json:"got"`
	OK      bool      `json:"ok"`
	Since   time.Time `json:"since,omitzero"`
	Note    string    `json:"note,omitempty"`
}

// ReportOf converts a round report for the API.
func ReportOf(r security.RoundReport) RoundReport {
	out := RoundReport{Site: r.Site, At: r.At, Checks: []RoundCheck{}}
	for _, c := range r.Checks {
		out.Checks = append(out.Checks, RoundCheck{Kind: string(c.Kind), Subject: c.Subject, Space: c.Space, Points: c.Points,
			Want: c.Want, Got: c.Got, OK: c.OK, Since: c.Since, Note: c.Note})
		if !c.OK {
			out.Findings++
		}
	}
	return out
}

func (s *Server) round(w http.ResponseWriter, r *http.Request) {
	rr, ok := s.b.(RoundRunner)
	if !ok {
		fail(w, http.StatusServiceUnavailable, errors.New("this gateway does not run patrol rounds"))
		return
	}
	rep, err := rr.Round(r.Context(), r.PathValue("site"))
	if err != nil {
		fail(w, http.StatusNotFound, err)
		return
	}
	reply(w, http.StatusOK, ReportOf(rep))
}

// Round runs the patrol round of a site on the gateway now.
func (c *Client) Round(ctx context.Context, site string) (RoundReport, error) {
	var out RoundReport
	err := c.call(ctx, http.MethodPost, "/v1/round/"+site, nil, &out)
	return out, err
}
