"""Reading the catalogue for people and other systems: the typed read shapes of an image, a run's
record and an output, declared once (shapes) and rendered alike by the CLI's JSON, the web desk and
the API; finding, listing and showing images (images). An output's view is put together in
outputs.listing, since its review comes from outputs.signoff, a stage above this room.
"""
