# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test bench clean system-deps

# bubblewrap isolates student code; installed from Debian where missing and we are root.
# Without it the grader falls back to rlimits-only isolation and says so loudly.
system-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null \
	      || echo "warning: could not install bubblewrap; grading will use rlimits-only isolation"; \
	  else echo "warning: bwrap missing (apt-get install bubblewrap); grading will use rlimits-only isolation"; fi; }

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

demo: system-deps $(STAMP)
	$(BIN)/backprop train-demo
	$(BIN)/backprop demo --course course

test: system-deps $(STAMP)
	$(BIN)/python -m pytest -q

bench: system-deps $(STAMP)
	$(BIN)/python bench/reference_speed.py
	$(BIN)/python bench/runner_startup.py

clean:
	rm -rf $(VENV) course build *.egg-info
