"""Reports: plots and HTML/Markdown reports from result tables."""
