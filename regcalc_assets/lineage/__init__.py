"""Lineage: from every reported figure to the positions, source rows and rule versions behind it."""
