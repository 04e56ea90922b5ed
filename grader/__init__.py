"""backprop-course grader: checks, the isolated runner, scoring, reports and the CLI."""
