package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sjs "github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// compileSchema compiles a shipped schema with an independent JSON Schema
// validator, so that what editors underline matches what the loader says.
func compileSchema(t *testing.T, kind string) *sjs.Schema {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "schema", kind+".schema.json"))
	require.NoError(t, err)
	doc, err := sjs.UnmarshalJSON(strings.NewReader(string(b)))
	require.NoError(t, err)
	c := sjs.NewCompiler()
	require.NoError(t, c.AddResource(kind+".json", doc))
	s, err := c.Compile(kind + ".json")
	require.NoError(t, err)
	return s
}

func yamlAsJSON(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var v any
	require.NoError(t, yaml.Unmarshal(b, &v), path)
	// Round-trip through JSON to get the types a JSON validator expects.
	j, err := json.Marshal(v)
	require.NoError(t, err)
	out, err := sjs.UnmarshalJSON(strings.NewReader(string(j)))
	require.NoError(t, err)
	return out
}

func TestShippedFilesMatchSchema(t *testing.T) {
	for kind, pattern := range map[string]string{
		"config":   "../../configs/*.yaml",
		"mapping":  "../../mappings/*.yaml",
		"template": "../../mappings/templates/*.yaml",
	} {
		s := compileSchema(t, kind)
		files, err := filepath.Glob(pattern)
		require.NoError(t, err)
		require.NotEmpty(t, files)
		for _, f := range files {
			require.NoError(t, s.Validate(yamlAsJSON(t, f)), f)
		}
	}
}

func TestSchemaRejectsWhatLoaderRejects(t *testing.T) {
	s := compileSchema(t, "mapping")
	for _, c := range []string{"unknown-key", "wrong-type", "protocol-mismatch"} {
		err := s.Validate(yamlAsJSON(t, filepath.Join("..", "..", "testdata", "mappings", c, "site.yaml")))
		require.Error(t, err, "schema accepts testdata/mappings/%s", c)
	}
}
