# `make test`: install the package with its test extras, then run the whole suite (what CI runs).
.PHONY: test
test:
	python -m pip install -q -e ".[test]"
	python -m pytest -q
