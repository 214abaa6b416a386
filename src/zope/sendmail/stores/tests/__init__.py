"""Tests every queue store must pass (`contract`)."""
