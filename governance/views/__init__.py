"""Read shapes shared by the CLI, its JSON, the web desk and the API: finding, listing and showing
images (images).
"""
