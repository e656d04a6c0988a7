package energy

import (
	"errors"
	"fmt"
	"io"

	"github.com/xuri/excelize/v2"
)

// Sheet names of the workbook WriteXLSX writes.
const (
	WeeksSheet = "Energy"
	DaysSheet  = "Open data"
)

// WriteXLSX writes a workbook with a sheet per report given: WeeksSheet
// for the energy report when weeks is not nil, DaysSheet for the open
// data export when days is not nil. Each sheet has a header row, one row
// per line with numbers as numbers (unknown values left empty) and a
// TOTAL row that sums the hour, count and kWh columns.
func WriteXLSX(w io.Writer, weeks []SpaceWeek, days []SpaceDay) (err error) {
	if weeks == nil && days == nil {
		return errors.New("energy: xlsx: no report to write")
	}
	f := excelize.NewFile()
	defer func() { err = errors.Join(err, f.Close()) }()
	styles, err := newStyles(f)
	if err != nil {
		return err
	}
	first := true
	sheet := func(name string) error {
		if first {
			first = false
			return f.SetSheetName("Sheet1", name)
		}
		_, err := f.NewSheet(name)
		return err
	}
	if weeks != nil {
		if err := sheet(WeeksSheet); err != nil {
			return err
		}
		if err := writeSheet(f, WeeksSheet, weekColumns, weeks, styles); err != nil {
			return err
		}
	}
	if days != nil {
		if err := sheet(DaysSheet); err != nil {
			return err
		}
		if err := writeSheet(f, DaysSheet, dayColumns, days, styles); err != nil {
			return err
		}
	}
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("energy: xlsx: %w", err)
	}
	return nil
}

type sheetStyles struct{ head, num, total, totalNum int }

func newStyles(f *excelize.File) (sheetStyles, error) {
	var s sheetStyles
	numFmt := "#,##0.00"
	bold := &excelize.Font{Bold: true}
	top := []excelize.Border{{Type: "top", Color: "000000", Style: 1}}
	var errs []error
	add := func(p *int, st *excelize.Style) {
		id, err := f.NewStyle(st)
		errs = append(errs, err)
		*p = id
	}
	add(&s.head, &excelize.Style{Font: bold, Border: []excelize.Border{{Type: "bottom", Color: "000000", Style: 1}}})
	add(&s.num, &excelize.Style{CustomNumFmt: &numFmt})
	add(&s.total, &excelize.Style{Font: bold, Border: top})
	add(&s.totalNum, &excelize.Style{Font: bold, Border: top, CustomNumFmt: &numFmt})
	return s, errors.Join(errs...)
}

func writeSheet[R any](f *excelize.File, sheet string, cols []column[R], rows []R, st sheetStyles) error {
	cell := func(col, row int) string {
		name, _ := excelize.CoordinatesToCellName(col+1, row)
		return name
	}
	var errs []error
	set := func(col, row int, v any, style int) {
		c := cell(col, row)
		if v != nil {
			errs = append(errs, f.SetCellValue(sheet, c, v))
		}
		errs = append(errs, f.SetCellStyle(sheet, c, c, style))
	}
	for i, c := range cols {
		set(i, 1, c.name, st.head)
	}
	sums := make([]float64, len(cols))
	for n, r := range rows {
		for i, c := range cols {
			if c.text != nil {
				set(i, n+2, c.text(r), 0)
				continue
			}
			x, ok := c.num(r)
			if !ok {
				continue
			}
			sums[i] += x
			style := st.num
			if !c.sum && x == float64(int64(x)) {
				style = 0 // years, weeks, whole hours and powers: as they are
			}
			set(i, n+2, x, style)
		}
	}
	last := len(rows) + 2
	for i, c := range cols {
		switch {
		case i == 0:
			set(i, last, "TOTAL", st.total)
		case c.sum:
			set(i, last, round(sums[i], 4), st.totalNum)
		default:
			set(i, last, nil, st.total)
		}
	}
	errs = append(errs,
		setWidth(f, sheet, len(cols)),
		f.SetPanes(sheet, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}),
	)
	return errors.Join(errs...)
}

// setWidth widens the columns so that headers and numbers fit.
func setWidth(f *excelize.File, sheet string, n int) error {
	end, err := excelize.ColumnNumberToName(n)
	if err != nil {
		return err
	}
	return f.SetColWidth(sheet, "A", end, 14)
}
