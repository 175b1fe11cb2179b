// Package bench holds the benchmark harness and load generators: synthetic
// call captures (see gen and cmd/gencalls), live replay, and side-by-side
// runs against tcpdump.
package bench
