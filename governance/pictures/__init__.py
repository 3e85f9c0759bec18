"""Reading what a file holds: the one decode path for image bytes (imaging), SVG rendered safely
(svg) and the rights metadata embedded in files (rights).
"""
