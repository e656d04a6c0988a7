package main

import (
	"context"
	"fmt"
	"io"

	"github.com/bmsgw/bmsgw/internal/httpapi"
)

// cmdToken makes API tokens: `bmsgw token new --name NAME --role ROLE`
// prints a new token once, and the config entry that holds only its
// hash.
func cmdToken(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprintln(stderr, "usage: bmsgw token new --name NAME --role viewer|operator|admin")
		return 2
	}
	fs := newFlags("token new", stderr, "token new --name NAME --role viewer|operator|admin")
	name := fs.String("name", "", "the holder's name (lower case letters, digits and ._@-)")
	role := fs.String("role", "viewer", "viewer, operator or admin")
	rest, err := parseFlags(fs, args[1:])
	if err != nil || len(rest) > 0 {
		return 2
	}
	if _, err := httpapi.ParseRole(*role); err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 2
	}
	token, hash, err := httpapi.GenerateToken()
	if err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 1
	}
	entry := httpapi.TokenEntry{Name: *name, Role: *role, TokenSHA256: hash}
	if _, err := httpapi.NewTokens([]httpapi.TokenEntry{entry}); err != nil {
		fmt.Fprintf(stderr, "bmsgw: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "token (shown once; give it to %s, keep it out of the config):\n  %s\n\n", *name, token)
	fmt.Fprintf(stdout, "config entry (under http: tokens:):\n  - {name: %s, role: %s, token_sha256: %s}\n\n", *name, *role, hash)
	fmt.Fprintf(stdout, "or a line of the tokens_file:\n  %s %s %s\n", *name, *role, hash)
	return 0
}
