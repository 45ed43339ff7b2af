"""Screens of the workbench, one per step of the flow."""
