package main

import (
	"context"
	"os"
	"testing"
)

// TestMain lets the test binary stand in for bmsgw where the gateway
// starts itself as a child process: the OPC UA server (bmsgw uaserver).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "uaserver" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
