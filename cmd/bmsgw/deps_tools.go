//go:build tools

package main

// The design card fixes the protocol libraries of the gateway. They are
// pinned here, before the point I/O adapters import them, so that go.mod
// holds the exact versions that are served (simonvetter/modbus v1.6.4,
// jacobsa/go-serial 15cf729a72d4) and go mod tidy keeps them.
import (
	_ "github.com/jacobsa/go-serial/serial"
	_ "github.com/simonvetter/modbus"
)
