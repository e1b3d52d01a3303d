"""Renderers: report objects in, text or JSON out. They never touch the store."""
