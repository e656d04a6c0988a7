package icalendar

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// seasonFeed writes a booking system's export for one school season: every
// school lends its rooms to associations on weekday evenings and weekends,
// weekly from mid-August to the end of May, with the autumn and Christmas holidays
// excluded, a few moved and cancelled sessions, and Outlook-style folding.
// 72 schools x 243 series give the municipality's ~17.5k weekly series.
func seasonFeed(schools, seriesPerSchool int) []byte {
	var b bytes.Buffer
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Municipality//Booking 4.2//DA\r\n" +
		"METHOD:PUBLISH\r\nX-WR-CALNAME:Lokaleudlån\r\nX-WR-TIMEZONE:Europe/Copenhagen\r\n" +
		"BEGIN:VTIMEZONE\r\nTZID:Europe/Copenhagen\r\n" +
		"BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n" +
		"BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n" +
		"END:VTIMEZONE\r\n")
	days := []string{"MO", "TU", "WE", "TH", "FR", "SA", "SU"}
	rooms := []string{"Gymnastiksal A", "Gymnastiksal B", "Festsal", "Klasselokale 12", "Musiklokale", "Kunstgræsbane"}
	seasonStart := time.Date(2026, 8, 17, 0, 0, 0, 0, time.UTC) // a Monday
	for s := 0; s < schools; s++ {
		for i := 0; i < seriesPerSchool; i++ {
			n := s*seriesPerSchool + i
			day := i % 7
			hour := 16 + (i/7)%6
			first := seasonStart.AddDate(0, 0, day)
			uid := fmt.Sprintf("booking-%06d@lokaleudlaan.kk.example", n)
			fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260701T120000Z\r\nSEQUENCE:%d\r\n", uid, n%3)
			fmt.Fprintf(&b, "DTSTART;TZID=Europe/Copenhagen:%sT%02d0000\r\n", first.Format("20060102"), hour)
			fmt.Fprintf(&b, "DTEND;TZID=Europe/Copenhagen:%sT%02d3000\r\n", first.Format("20060102"), hour+1)
			fmt.Fprintf(&b, "RRULE:FREQ=WEEKLY;BYDAY=%s;UNTIL=20270528T215959Z\r\n", days[day])
			// Autumn holiday (week 42) and Christmas.
			autumn := time.Date(2026, 10, 12, 0, 0, 0, 0, time.UTC).AddDate(0, 0, day)
			xmas := time.Date(2026, 12, 21, 0, 0, 0, 0, time.UTC).AddDate(0, 0, day)
			fmt.Fprintf(&b, "EXDATE;TZID=Europe/Copenhagen:%sT%02d0000,%sT%02d0000,%sT%02d0000\r\n",
				autumn.Format("20060102"), hour, xmas.Format("20060102"), hour, xmas.AddDate(0, 0, 7).Format("20060102"), hour)
			fmt.Fprintf(&b, "SUMMARY:Forening %d - %s\r\n", n%900, []string{"fodbold", "volleyball", "skak", "kor", "badminton"}[n%5])
			fmt.Fprintf(&b, "LOCATION:Skole %02d\\, %s\r\n", s+1, rooms[i%len(rooms)])
			fmt.Fprintf(&b, "ORGANIZER;CN=\"Forening %d\":mailto:forening%d@foreninger.example\r\n", n%900, n%900)
			fmt.Fprintf(&b, "STATUS:CONFIRMED\r\nX-KK-RESOURCE-ID:skole-%02d-lokale-%d\r\nDESCRIPTION:Ugentlig booking. Nøgle\r\n  og adgangskort udleveres af skolens servicemedarbejder.\r\nEND:VEVENT\r\n", s+1, i%len(rooms))
			if i%40 == 0 {
				// A session moved an hour later, and one cancelled.
				moved := first.AddDate(0, 0, 28)
				fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260801T120000Z\r\nSEQUENCE:%d\r\n", uid, n%3+1)
				fmt.Fprintf(&b, "RECURRENCE-ID;TZID=Europe/Copenhagen:%sT%02d0000\r\n", moved.Format("20060102"), hour)
				fmt.Fprintf(&b, "DTSTART;TZID=Europe/Copenhagen:%sT%02d0000\r\nDTEND;TZID=Europe/Copenhagen:%sT%02d3000\r\n", moved.Format("20060102"), hour+1, moved.Format("20060102"), hour+2)
				fmt.Fprintf(&b, "SUMMARY:Forening %d (flyttet)\r\nSTATUS:CONFIRMED\r\nEND:VEVENT\r\n", n%900)
				gone := first.AddDate(0, 0, 35)
				fmt.Fprintf(&b, "BEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260801T120000Z\r\nSEQUENCE:%d\r\n", uid, n%3+1)
				fmt.Fprintf(&b, "RECURRENCE-ID;TZID=Europe/Copenhagen:%sT%02d0000\r\n", gone.Format("20060102"), hour)
				fmt.Fprintf(&b, "DTSTART;TZID=Europe/Copenhagen:%sT%02d0000\r\nDTEND;TZID=Europe/Copenhagen:%sT%02d3000\r\n", gone.Format("20060102"), hour, gone.Format("20060102"), hour+1)
				fmt.Fprintf(&b, "SUMMARY:Forening %d\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n", n%900)
			}
		}
	}
	b.WriteString("END:VCALENDAR\r\n")
	return b.Bytes()
}

var seasonWindow = struct{ from, to time.Time }{
	time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC),
	time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC),
}

func TestSeasonFeedShape(t *testing.T) {
	feed := seasonFeed(2, 243)
	cal, err := Parse(bytes.NewReader(feed))
	require.NoError(t, err)
	require.Empty(t, cal.Warnings())
	occs, err := cal.Expand(seasonWindow.from, seasonWindow.to, time.UTC)
	require.NoError(t, err)
	// 2 x 243 series of 39 weeks less 3 holidays, about 38 each: the full
	// 72 schools give the ~660k occurrences the benchmark is sized for.
	perSeries := float64(len(occs)) / (2 * 243)
	require.InDelta(t, 37.7, perSeries, 1.0)
}

// BenchmarkParseExpand parses and expands a whole municipal season: 72
// schools, ~17.5k weekly series, ~660k occurrences.
func BenchmarkParseExpand(b *testing.B) {
	feed := seasonFeed(72, 243)
	b.SetBytes(int64(len(feed)))
	b.ReportAllocs()
	var n int
	for b.Loop() {
		cal, err := Parse(bytes.NewReader(feed))
		if err != nil {
			b.Fatal(err)
		}
		occs, err := cal.Expand(seasonWindow.from, seasonWindow.to, time.UTC)
		if err != nil {
			b.Fatal(err)
		}
		n = len(occs)
	}
	b.ReportMetric(float64(n), "occurrences/op")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "occurrences/s")
}
