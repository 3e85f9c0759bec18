"""Ingest, stage one of the data flow: what is offered (offers, manifest), reading each file once
(examine), writing batches (batches) and the run that ties them together (run).
"""
