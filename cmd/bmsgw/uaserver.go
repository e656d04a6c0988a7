package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/bmsgw/bmsgw/internal/uaserver"
)

// cmdUAServer is the hidden `bmsgw uaserver --socket PATH` command: the
// OPC UA server child process that uaserver.Supervisor starts and feeds
// (not for people to run). It logs to stderr, which the supervisor
// passes on to the gateway's log.
func cmdUAServer(ctx context.Context, args []string, _, stderr io.Writer) int {
	fs := flag.NewFlagSet("uaserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", "", "the gateway's Unix socket to connect to")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *socket == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: bmsgw uaserver --socket PATH (started by the gateway, not by hand)")
		return 2
	}
	// gopcua prints start-up chatter with the standard log package.
	log.SetOutput(io.Discard)
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := uaserver.RunChild(ctx, *socket, logger); err != nil {
		fmt.Fprintf(stderr, "bmsgw uaserver: %v\n", err)
		return 1
	}
	return 0
}
