"""Tests for include/."""
