package energy

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"time"
)

// column is one column of a report table, shared by the CSV and XLSX
// writers so that both have the same columns in the same order.
type column[R any] struct {
	name string
	// text renders a text column; num a number column, false for an
	// empty cell (an unknown value).
	text func(R) string
	num  func(R) (float64, bool)
	// sum marks the columns the XLSX totals row adds up.
	sum bool
}

func textCol[R any](name string, f func(R) string) column[R] { return column[R]{name: name, text: f} }

func numCol[R any](name string, sum bool, f func(R) float64) column[R] {
	return column[R]{name: name, sum: sum, num: func(r R) (float64, bool) { return f(r), true }}
}

// optCol is a number column that may be unknown.
func optCol[R any, N int | float64](name string, f func(R) *N) column[R] {
	return column[R]{name: name, sum: true, num: func(r R) (float64, bool) {
		if p := f(r); p != nil {
			return float64(*p), true
		}
		return 0, false
	}}
}

const stamp = time.RFC3339

var weekColumns = []column[SpaceWeek]{
	textCol("site", func(r SpaceWeek) string { return r.Site }),
	textCol("space", func(r SpaceWeek) string { return r.Space }),
	textCol("name", func(r SpaceWeek) string { return r.Name }),
	numCol("iso_year", false, func(r SpaceWeek) float64 { return float64(r.Year) }),
	numCol("iso_week", false, func(r SpaceWeek) float64 { return float64(r.Week) }),
	textCol("from", func(r SpaceWeek) string { return r.From.Format(stamp) }),
	textCol("to", func(r SpaceWeek) string { return r.To.Format(stamp) }),
	numCol("hours", false, func(r SpaceWeek) float64 { return r.Hours }),
	numCol("lending_hours", true, func(r SpaceWeek) float64 { return r.LendingHours }),
	numCol("baseline_hours", true, func(r SpaceWeek) float64 { return r.BaselineHours }),
	numCol("comfort_hours", true, func(r SpaceWeek) float64 { return r.ComfortHours }),
	numCol("saved_hours", true, func(r SpaceWeek) float64 { return r.SavedHours }),
	numCol("lighting_baseline_hours", true, func(r SpaceWeek) float64 { return r.LightingBaselineHours }),
	numCol("lighting_hours", true, func(r SpaceWeek) float64 { return r.LightingHours }),
	numCol("lighting_saved_hours", true, func(r SpaceWeek) float64 { return r.LightingSavedHours }),
	numCol("heating_kw", false, func(r SpaceWeek) float64 { return r.HeatingKW }),
	numCol("lighting_kw", false, func(r SpaceWeek) float64 { return r.LightingKW }),
	numCol("heating_kwh_saved", true, func(r SpaceWeek) float64 { return r.HeatingKWhSaved }),
	numCol("lighting_kwh_saved", true, func(r SpaceWeek) float64 { return r.LightingKWhSaved }),
	numCol("kwh_saved", true, func(r SpaceWeek) float64 { return r.KWhSaved }),
}

var dayColumns = []column[SpaceDay]{
	textCol("site", func(r SpaceDay) string { return r.Site }),
	textCol("space", func(r SpaceDay) string { return r.Space }),
	textCol("name", func(r SpaceDay) string { return r.Name }),
	textCol("date", func(r SpaceDay) string { return r.Date }),
	numCol("hours", false, func(r SpaceDay) float64 { return r.Hours }),
	numCol("booked_hours", true, func(r SpaceDay) float64 { return r.BookedHours }),
	optCol("in_use_hours", func(r SpaceDay) *float64 { return r.InUseHours }),
	optCol("no_shows", func(r SpaceDay) *int { return r.NoShows }),
	optCol("late_arrivals", func(r SpaceDay) *int { return r.Late }),
	numCol("comfort_hours", true, func(r SpaceDay) float64 { return r.ComfortHours }),
	numCol("lighting_hours", true, func(r SpaceDay) float64 { return r.LightingHours }),
}

// WriteWeeksCSV writes the energy report as CSV: a header row and one
// row per line, numbers with a decimal point. It has no totals row:
// summing is left to whoever reads it.
func WriteWeeksCSV(w io.Writer, rows []SpaceWeek) error { return writeCSV(w, weekColumns, rows) }

// WriteDaysCSV writes the open data export as CSV, like WriteWeeksCSV;
// an unknown value (a space without evidence) is an empty field.
func WriteDaysCSV(w io.Writer, rows []SpaceDay) error { return writeCSV(w, dayColumns, rows) }

func writeCSV[R any](w io.Writer, cols []column[R], rows []R) error {
	cw := csv.NewWriter(w)
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = c.name
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	rec := make([]string, len(cols))
	for _, r := range rows {
		for i, c := range cols {
			if c.text != nil {
				rec[i] = safeText(c.text(r))
			} else if x, ok := c.num(r); ok {
				rec[i] = strconv.FormatFloat(x, 'f', -1, 64)
			} else {
				rec[i] = ""
			}
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// safeText keeps a spreadsheet from reading a name as a formula.
func safeText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteWeeksJSON writes the energy report as a JSON object with the lines
// under "weeks" and their sums under "totals".
func WriteWeeksJSON(w io.Writer, rows []SpaceWeek) error {
	if rows == nil {
		rows = []SpaceWeek{}
	}
	return writeJSON(w, struct {
		Weeks  []SpaceWeek `json:"weeks"`
		Totals Totals      `json:"totals"`
	}{rows, Total(rows)})
}

// WriteDaysJSON writes the open data export as a JSON object with the
// lines under "days"; unknown values are null.
func WriteDaysJSON(w io.Writer, rows []SpaceDay) error {
	if rows == nil {
		rows = []SpaceDay{}
	}
	return writeJSON(w, struct {
		Days []SpaceDay `json:"days"`
	}{rows})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
