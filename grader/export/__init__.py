"""``backprop export``: grading results in the formats other systems import (LMS gradebooks), and autograder bundles (Gradescope)."""
