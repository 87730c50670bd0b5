// Package martbench holds benchmarks that build the real built-in marts on
// demo data. They live apart from package transform because they link the
// Go models of transform/clv, which would otherwise join every unit test's
// project.
package martbench
