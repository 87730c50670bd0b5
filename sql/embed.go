// Package models embeds cdw's built-in SQL models (the .sql files in this
// folder tree) so the binary runs anywhere without the source tree.
package models

import "embed"

// FS holds staging/, core/, marts/ and tests/.
//
//go:embed staging core marts tests
var FS embed.FS
