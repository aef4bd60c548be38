# The two commands of README.md:
#   make demo   set up .venv (tools/setup_env.sh) and run the main job on the embedded default
#   make test   set up .venv and run the test suite
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test
setup:
	bash tools/setup_env.sh

demo: setup
	$(PY) tools/smoke.py
	$(PY) tools/demo.py

test: setup
	bash tools/run_tests.sh $(PYTEST_ARGS)
