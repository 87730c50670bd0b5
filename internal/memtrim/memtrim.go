// Package memtrim hands memory that C code has freed back to the operating
// system.
//
// DuckDB allocates through the C library's malloc. glibc keeps freed memory in
// per-thread arenas for reuse, and cgo calls land on many OS threads, so after
// a few large queries a process holds gigabytes it no longer uses: at 100M
// order lines the transform's RSS reached 4.5 GB with DuckDB's memory_limit at
// 2.5 GB, while each model on its own stayed under 2.8 GB. Calling Release
// between large steps returns those free pages.
package memtrim
