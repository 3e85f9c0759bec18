"""Outputs: audited generation and each output's provenance (provenance), scores (scoring), sign-
off (signoff), Content Credentials (credentials) and models trained on a cleared index
(training).
"""
