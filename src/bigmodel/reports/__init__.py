"""Run-comparison reports for ``bigmodel.compare``: reading runs, the table, plots and HTML."""
