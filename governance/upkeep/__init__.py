"""Upkeep: keeping the catalogue sound. What a run killed at the wrong moment leaves behind (doctor),
and whether the log and the tables are what they should be: the audit head signed and kept outside
the database (checkpoints), the log replayed against the tables (replay, replay_rules,
replay_tables), and `audit verify`'s three checks in one result (log_check)."""
