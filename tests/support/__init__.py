"""Helpers shared by the test files: import them from here, never from another test module."""
