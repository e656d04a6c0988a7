package energy_test

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"

	"github.com/bmsgw/bmsgw/internal/energy"
	"github.com/bmsgw/bmsgw/internal/schedule"
)

// TestXLSXOpensAgainWithTheNumbers writes the reference week's energy
// report and open data to a workbook, opens it again with excelize and
// reads the numbers back as numbers.
func TestXLSXOpensAgainWithTheNumbers(t *testing.T) {
	from, to := at(2026, 11, 23, 0, 0), at(2026, 11, 30, 0, 0)
	ref := loadSeason(t, from, to)
	b, ns := chess(t, ref)
	spec := referenceSpec(ref.site)
	plan := schedule.NewOverlay(ref.compile(from, to), ref.site, from, to, releaseSpace(ref.site, "room12", ns.Time, b.End), nil)
	weeks, err := energy.WeekReport(spec, plan, from, to)
	require.NoError(t, err)
	noShows, inUse := journalEvents(t, ns)
	days, err := energy.DailyOpenData(spec, plan, ref.bookings, noShows, inUse, from, to)
	require.NoError(t, err)
	require.Len(t, days, 14)

	var buf bytes.Buffer
	require.NoError(t, energy.WriteXLSX(&buf, weeks, days))
	f, err := excelize.OpenReader(&buf)
	require.NoError(t, err)
	defer func() { require.NoError(t, f.Close()) }()
	require.Equal(t, []string{energy.WeeksSheet, energy.DaysSheet}, f.GetSheetList())

	// num reads a cell that must hold a number, not text.
	num := func(sheet, cell string) float64 {
		t.Helper()
		typ, err := f.GetCellType(sheet, cell)
		require.NoError(t, err)
		require.Contains(t, []excelize.CellType{excelize.CellTypeUnset, excelize.CellTypeNumber}, typ, "%s!%s is not a number", sheet, cell)
		v, err := f.GetCellValue(sheet, cell, excelize.Options{RawCellValue: true})
		require.NoError(t, err)
		x, err := strconv.ParseFloat(v, 64)
		require.NoError(t, err, "%s!%s = %q", sheet, cell, v)
		return x
	}
	text := func(sheet, cell string) string {
		t.Helper()
		v, err := f.GetCellValue(sheet, cell)
		require.NoError(t, err)
		return v
	}

	rows, err := f.GetRows(energy.WeeksSheet)
	require.NoError(t, err)
	require.Len(t, rows, 4, "header, gym, room12, TOTAL")
	require.Equal(t, []string{"site", "space", "name", "iso_year", "iso_week", "from", "to", "hours", "lending_hours", "baseline_hours",
		"comfort_hours", "saved_hours", "lighting_baseline_hours", "lighting_hours", "lighting_saved_hours",
		"heating_kw", "lighting_kw", "heating_kwh_saved", "lighting_kwh_saved", "kwh_saved"}, rows[0])
	require.Equal(t, "gym", text(energy.WeeksSheet, "B2"))
	require.Equal(t, 48.0, num(energy.WeeksSheet, "E2"))
	require.Equal(t, "2026-11-23T00:00:00+01:00", text(energy.WeeksSheet, "F2"))
	require.Equal(t, 168.0, num(energy.WeeksSheet, "H2"))
	require.Equal(t, 46.5, num(energy.WeeksSheet, "L2"))    // gym saved hours
	require.Equal(t, 1779.0, num(energy.WeeksSheet, "T2"))  // gym kWh saved
	require.Equal(t, 49.6667, num(energy.WeeksSheet, "L3")) // room12 after the no-show
	require.Equal(t, 229.067, num(energy.WeeksSheet, "T3"))
	require.Equal(t, "TOTAL", text(energy.WeeksSheet, "A4"))
	require.Equal(t, 96.1667, num(energy.WeeksSheet, "L4"))
	require.Equal(t, 2008.067, num(energy.WeeksSheet, "T4"))
	require.Empty(t, text(energy.WeeksSheet, "H4"), "the length of a week is not summed")

	rows, err = f.GetRows(energy.DaysSheet)
	require.NoError(t, err)
	require.Len(t, rows, 16, "header, 7 days × 2 spaces, TOTAL")
	// Thursday: row 2 + 3 days × 2 spaces; the gym, then classroom 12.
	require.Equal(t, "2026-11-26", text(energy.DaysSheet, "D8"))
	require.Equal(t, "gym", text(energy.DaysSheet, "B8"))
	require.Empty(t, text(energy.DaysSheet, "G8"), "the gym's use is unknown: an empty cell")
	require.Equal(t, "room12", text(energy.DaysSheet, "B9"))
	require.Equal(t, 2.0, num(energy.DaysSheet, "F9"))
	require.Equal(t, 0.0, num(energy.DaysSheet, "G9"))
	require.Equal(t, 1.0, num(energy.DaysSheet, "H9"))
	// Totals: booked 2 (Tue, room12) + 2 + 2 (Thu) + 2 (Sun, gym) = 8 h;
	// in use only where known: room12's Tuesday 2 h; one no-show.
	require.Equal(t, "TOTAL", text(energy.DaysSheet, "A16"))
	require.Equal(t, 8.0, num(energy.DaysSheet, "F16"))
	require.Equal(t, 2.0, num(energy.DaysSheet, "G16"))
	require.Equal(t, 1.0, num(energy.DaysSheet, "H16"))

	require.Error(t, energy.WriteXLSX(&buf, nil, nil))
}
