"""Standing: what a change in an image's standing does to the indexes that hold it and the released
outputs that retrieved it (`rejudge`), one path for a revocation, a licence change and an opt-out.
"""
