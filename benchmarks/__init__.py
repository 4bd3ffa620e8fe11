"""Throughput and latency benchmarks (not tests): each script prints a table and its command."""
