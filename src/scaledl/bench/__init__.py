"""Latency, throughput and memory measurement of packages on a target."""
