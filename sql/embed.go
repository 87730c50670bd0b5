// Package models embeds cdw's built-in SQL models (the .sql files in this
// folder tree) so the binary runs anywhere without the source tree.
//
// The Go models the built-in models read (clv_params from transform/clv,
// identity_components from transform/identity) are registered by whoever
// runs them: cmd/cdw/kinds.go for the binary, a blank import for a test.
package models

import "embed"

// FS holds staging/, core/, marts/, tests/ and macros/ (the churn score's formula).
//
//go:embed staging core marts tests macros
var FS embed.FS
