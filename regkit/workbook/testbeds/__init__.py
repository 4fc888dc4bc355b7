"""Experiment testbeds: the synthetic data, tasks, models and fixtures the notebooks run methods on."""
