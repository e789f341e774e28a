"""Jinja2 templates rendered into each API's build context (shipped as package data)."""
