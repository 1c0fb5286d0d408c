# Convenience aliases; the commands themselves need only Python 3.11 (see tasks.py).
PYTHON ?= python3
.PHONY: demo test
demo:
	$(PYTHON) tasks.py demo
test:
	$(PYTHON) tasks.py test
