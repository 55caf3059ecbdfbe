"""Kinsight host library: decode, ingest, store, learn, alert, report."""

__version__ = "0.1.0"
