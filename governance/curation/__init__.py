"""Curation: style sets and their frozen versions (stylesets), and which members a policy clears
(clearance).
"""
