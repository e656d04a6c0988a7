package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bmsgw/bmsgw/docs/schema"
	"github.com/bmsgw/bmsgw/internal/config"
)

// defaultConfig is the config file used without -c: $BMSGW_CONFIG, else
// the demo config of a source checkout.
func defaultConfig() string {
	if c := os.Getenv("BMSGW_CONFIG"); c != "" {
		return c
	}
	return "configs/demo.yaml"
}

func newFlags(name string, stderr io.Writer, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bmsgw %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses flags that may come before or after positional
// arguments, as people type them.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// parseOptions parses the flags of a command that takes no positional
// argument; on false it has said why (the command exits 2).
func parseOptions(fs *flag.FlagSet, args []string) bool {
	rest, err := parseFlags(fs, args)
	if err != nil {
		return false
	}
	if len(rest) > 0 {
		fs.Usage()
		return false
	}
	return true
}

// usageError prints a usage error and returns the exit status 2.
func usageError(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "bmsgw: "+format+"\n", args...)
	return 2
}

func loadConfig(path string, stderr io.Writer) (*config.Gateway, bool) {
	g, err := config.Load(path)
	if err != nil {
		var list config.ErrorList
		if errors.As(err, &list) {
			fmt.Fprintln(stderr, list.Error())
			fmt.Fprintf(stderr, "%d error(s); nothing was changed\n", len(list))
		} else {
			fmt.Fprintln(stderr, err)
		}
		return nil, false
	}
	if errs := checkDrivers(g); len(errs) > 0 {
		fmt.Fprintln(stderr, strings.Join(errs, "\n"))
		fmt.Fprintf(stderr, "%d error(s); nothing was changed\n", len(errs))
		return nil, false
	}
	return g, true
}

func cmdValidate(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr, "validate [-c CONFIG]")
	cfg := fs.String("c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	if !parseOptions(fs, args) {
		return 2
	}
	g, ok := loadConfig(*cfg, stderr)
	if !ok {
		return 1
	}
	points, spaces := 0, 0
	for _, s := range g.Sites {
		points += len(s.Points)
		spaces += len(s.Spaces)
		fmt.Fprintf(stdout, "%s: site %s (%s): %d points, %d spaces\n", s.File, s.ID, s.Location, len(s.Points), len(s.Spaces))
	}
	fmt.Fprintf(stdout, "%s: ok: %d site(s), %d template(s), %d source(s), %d points, %d spaces\n",
		g.File, len(g.Sites), len(g.Templates), len(g.Sources), points, spaces)
	return 0
}

func cmdSchema(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("schema", stderr, "schema config|mapping|template")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(rest) != 1 {
		fs.Usage()
		return 2
	}
	b, err := schema.FS.ReadFile(rest[0] + ".schema.json")
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: no schema %q; use config, mapping or template\n", rest[0])
		return 2
	}
	_, _ = stdout.Write(b)
	return 0
}
