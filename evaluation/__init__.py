"""Evaluation harness: answer metrics, reports and the CLI commands that score models."""
