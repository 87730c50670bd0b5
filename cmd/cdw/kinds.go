package main

// Source kinds and publish targets register themselves when imported: adding
// one is a new package plus one line here.
import (
	_ "github.com/cdwhq/cdw/extract/files"
	_ "github.com/cdwhq/cdw/extract/httpapi"
	_ "github.com/cdwhq/cdw/extract/postgres"
	_ "github.com/cdwhq/cdw/load/duckdbfile"
	_ "github.com/cdwhq/cdw/load/iceberg"
	_ "github.com/cdwhq/cdw/load/parquet"
	_ "github.com/cdwhq/cdw/load/postgres"
	_ "github.com/cdwhq/cdw/transform/clv"
)
