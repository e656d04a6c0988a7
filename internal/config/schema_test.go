package config

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files and generated schemas")

// TestSchemaUpToDate regenerates the JSON Schemas from the types and their
// comments and fails if the committed files differ (run with -update).
func TestSchemaUpToDate(t *testing.T) {
	for kind := range SchemaKinds {
		t.Run(kind, func(t *testing.T) {
			got, err := Schema(kind, ".")
			require.NoError(t, err)
			path := filepath.Join("..", "..", "docs", "schema", kind+".schema.json")
			if *update {
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run: go test ./internal/config -run TestSchemaUpToDate -update")
			if string(want) != string(got) {
				t.Fatalf("%s is stale; run: make schema (go test ./internal/config -run TestSchemaUpToDate -update)", path)
			}
		})
	}
}
