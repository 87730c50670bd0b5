// Package codecheck holds tests of the code base itself, such as the limit
// on function length (the developer guide: no function over 120 lines
// outside tests). It has no code of its own.
package codecheck
