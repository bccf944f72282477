"""The clinical core: records, validation, scales and clocks. Plain Python, no Qt."""
