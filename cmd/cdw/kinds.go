package main

// Everything cdw can be configured with registers itself when imported:
// adding a source kind, a publish target or a Go model is a new package plus
// one line here. `cdw kinds` prints what is registered.
import (
	// Source kinds (extract.Register).
	_ "github.com/cdwhq/cdw/extract/files"
	_ "github.com/cdwhq/cdw/extract/httpapi"
	_ "github.com/cdwhq/cdw/extract/postgres"

	// Publish targets (load.Register).
	_ "github.com/cdwhq/cdw/load/duckdbfile"
	_ "github.com/cdwhq/cdw/load/iceberg"
	_ "github.com/cdwhq/cdw/load/parquet"
	_ "github.com/cdwhq/cdw/load/postgres"

	// Go models and SQL functions (transform.RegisterGoModel,
	// transform.RegisterFunctions) that the built-in models in sql/ read.
	_ "github.com/cdwhq/cdw/transform/clv"      // clv_params; BG/NBD and Gamma-Gamma functions
	_ "github.com/cdwhq/cdw/transform/identity" // identity_components
)
