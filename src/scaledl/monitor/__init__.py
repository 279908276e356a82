"""Monitoring: reference profiles, drift tests, live accuracy, alerts, dashboard, maintenance."""
