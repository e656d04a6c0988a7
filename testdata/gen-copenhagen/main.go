// Command gen-copenhagen writes the generated Copenhagen-scale data set
// (internal/sitegen) as a configuration bmsgw loads: gateway.yaml, one
// mapping per school and the season's booking feed, for trying the
// gateway at full scale.
//
//	go run ./testdata/gen-copenhagen -out /tmp/cph [-schools 72] [-seed 1]
//
// It lives under testdata so that ./... patterns (go test, go vet) leave
// it out; go run with its path builds it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	_ "time/tzdata" // Europe/Copenhagen must resolve on bare machines.

	"github.com/bmsgw/bmsgw/internal/sitegen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gen-copenhagen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "output `directory` (created if missing)")
	schools := fs.Int("schools", sitegen.DefaultSchools, "number of schools")
	seed := fs.Uint64("seed", sitegen.DefaultSeed, "seed; the same seed gives the same data set")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./testdata/gen-copenhagen -out DIR [-schools N] [-seed N]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *out == "" || fs.NArg() > 0 || *schools < 1 || *seed == 0 {
		fs.Usage()
		return 2
	}
	ds, err := sitegen.Generate(sitegen.Config{Schools: *schools, Seed: *seed})
	if err != nil {
		fmt.Fprintf(stderr, "gen-copenhagen: %v\n", err)
		return 1
	}
	if err := ds.WriteFiles(*out); err != nil {
		fmt.Fprintf(stderr, "gen-copenhagen: %v\n", err)
		return 1
	}

	spaces, points := 0, 0
	for _, s := range ds.Sites {
		spaces += len(s.Spaces)
		points += len(s.Points)
	}
	size := func(name string) string {
		fi, err := os.Stat(filepath.Join(*out, name))
		if err != nil {
			return "?"
		}
		return fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6)
	}
	var mappings int64
	for _, s := range ds.Sites {
		if fi, err := os.Stat(filepath.Join(*out, sitegen.MappingsDir, s.ID+".yaml")); err == nil {
			mappings += fi.Size()
		}
	}
	fmt.Fprintf(stdout, "wrote %s:\n", *out)
	fmt.Fprintf(stdout, "  %-22s gateway config, booking source %q\n", sitegen.GatewayFileName, ds.Source)
	fmt.Fprintf(stdout, "  %-22s %d site mappings, %.1f MB\n", sitegen.MappingsDir+"/*.yaml", len(ds.Sites), float64(mappings)/1e6)
	tpls, _ := filepath.Glob(filepath.Join(*out, sitegen.TemplatesDir, "*.yaml"))
	fmt.Fprintf(stdout, "  %-22s %d device templates\n", sitegen.TemplatesDir+"/*.yaml", len(tpls))
	fmt.Fprintf(stdout, "  %-22s iCalendar feed, %s\n", sitegen.FeedFileName, size(sitegen.FeedFileName))
	fmt.Fprintf(stdout, "data set (seed %d), season %s to %s:\n", *seed, ds.SeasonStart, ds.SeasonEnd)
	fmt.Fprintf(stdout, "  %d sites, %d spaces, %d points\n", len(ds.Sites), spaces, points)
	fmt.Fprintf(stdout, "  %d weekly booking series, %d occurrences\n", len(ds.Series), len(ds.Bookings()))
	cfg := filepath.Join(*out, sitegen.GatewayFileName)
	fmt.Fprintf(stdout, "try:\n")
	fmt.Fprintf(stdout, "  go run ./cmd/bmsgw validate -c %s\n", cfg)
	if len(ds.Sites) > 0 {
		fmt.Fprintf(stdout, "  go run ./cmd/bmsgw plan -c %s --site %s --from 2026-11-26 --to 2026-11-27\n", cfg, ds.Sites[0].ID)
	}
	return 0
}
