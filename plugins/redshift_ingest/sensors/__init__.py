"""Sensors of the ingest DAGs: the wait for a NEW file in the register."""

from redshift_ingest.sensors.register_sensor import RegisterSensor, RegisterUnavailable, build_wait_sensor

__all__ = ["RegisterSensor", "RegisterUnavailable", "build_wait_sensor"]
