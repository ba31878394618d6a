"""Evaluation harness: public data sets and the metrics `newsrag eval` reports."""
