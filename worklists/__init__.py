"""Worklists: ranking, exclusions, MDT capacity, reasons text, week-on-week change and export."""
