"""Indexes: encoders (encoders), cleared builds, their records and going stale (builds), the
verified read-only handle a generator gets (handle) and members' phashes for the near-copy check
(copyhash). The only stage that needs torch and usearch.
"""
