"""The `anyaccel` command line: info, explain, check, bench, run."""
