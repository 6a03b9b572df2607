"""Liveness and readiness probes for the platform and operators."""
