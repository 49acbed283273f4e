"""Evaluation harness: metrics, protocols (Tables 2 and 3, ROC), tables, plots and ablations."""
