"""Helpers shared by the tests: independent reference computations, scenario files and
the subprocess body of the multi-process sweep tests (not tests themselves)."""
