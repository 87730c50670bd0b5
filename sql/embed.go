// Package models embeds cdw's built-in SQL models (the .sql files in this
// folder tree) so the binary runs anywhere without the source tree.
package models

import (
	"embed"

	// Go models the built-in SQL models read: whoever runs these models
	// gets them registered.
	_ "github.com/cdwhq/cdw/transform/clv"      // clv_params
	_ "github.com/cdwhq/cdw/transform/identity" // identity_components
)

// FS holds staging/, core/, marts/, tests/ and macros/ (the churn score's formula).
//
//go:embed staging core marts tests macros
var FS embed.FS
