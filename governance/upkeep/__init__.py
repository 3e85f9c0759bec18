"""Upkeep: finding and tidying what a run killed at the wrong moment leaves behind (doctor)."""
