"""Indicators for command-centre screens: each worker's share of every area, added up per area."""
