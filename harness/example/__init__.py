"""Bundled example workflow: a simulated customer-support refund assistant."""
