"""Reports from grading output: per-student feedback HTML, the class report, terminal helpers."""
