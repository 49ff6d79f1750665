"""The load benchmark: `make bench` seeds PostgreSQL, drives the API with wrk, writes REPORT.md."""
