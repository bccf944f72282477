"""The device layer: readings from bedside monitors and oximeters, before the store sees them.

Qt-free and store-free (import-linter contracts in pyproject.toml): adapters turn what a device
sends into typed :class:`~kapmonitor.devices.reading.DeviceReading` values and hand them to a sink
that stores them; the lead wires that sink to the store. docs/devices.md is the conformance
statement.
"""
