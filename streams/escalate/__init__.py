"""Escalation: every incident owned at the right tier, and climbing when nobody answers.

Town → county → city on missed deadlines, until a department closes the loop.
"""
