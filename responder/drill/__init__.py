"""Drill tooling: record and export alerts, replay them, report what the responder did."""
