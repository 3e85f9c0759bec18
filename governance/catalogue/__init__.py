"""The record: the database and its schema (db, models), the hash-chained audit log (audit), actors
and their roles (actors), the content store beside it (store, limits) and run liveness
(liveness).
"""
