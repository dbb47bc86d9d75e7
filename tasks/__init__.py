"""Thin Prefect tasks: load inputs, call the torchtransfer library, log to MLflow, return small results."""
