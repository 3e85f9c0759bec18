"""Legal's work: decisions on images (review), the site's licence aliases (alias_edits) and reports
(reports).
"""
