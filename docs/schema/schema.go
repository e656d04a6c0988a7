// Package schema embeds the generated JSON Schemas of the gateway config,
// site mapping and device template files, so that the binary can print
// them (bmsgw schema) without the source tree.
package schema

import "embed"

// FS holds config.schema.json, mapping.schema.json and template.schema.json.
//
//go:embed *.schema.json
var FS embed.FS
