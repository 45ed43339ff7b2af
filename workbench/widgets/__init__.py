"""Widgets of the workbench, one per file; each declares the messages it sends."""
