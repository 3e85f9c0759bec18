"""`stylevault demo`: the whole flow on the demo world (run)."""
