"""Test helpers: one end-to-end pipeline under test (the real servers are in include/services.py)."""
