"""Traffic for a city that is not connected yet.

A simulated device fleet, scenarios with the answers they should produce, replays of recorded
traffic, and drills that score the response.
"""
