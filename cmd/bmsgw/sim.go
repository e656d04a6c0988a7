package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/bmsgw/bmsgw/internal/config"
	"github.com/bmsgw/bmsgw/internal/control"
)

// cmdSim runs simulators for every connection of a config without the
// gateway, so that a gateway elsewhere (or a test) can be pointed at them.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("sim", stderr, "sim [-c CONFIG]")
	cfg := fs.String("c", defaultConfig(), "gateway config `file` ($BMSGW_CONFIG)")
	if rest, err := parseFlags(fs, args); err != nil || len(rest) > 0 {
		return 2
	}
	g, ok := loadConfig(*cfg, stderr)
	if !ok {
		return 1
	}
	if g.Simulate == nil {
		g.Simulate = &config.Simulate{}
	}
	g.Simulate.Devices = true
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	sims, err := startSimulators(ctx, g, control.RealClock{}, logger)
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	defer sims.Close()
	fmt.Fprintf(stdout, "simulators running for %s; Ctrl-C stops them\n", g.File)
	<-ctx.Done()
	return 0
}
