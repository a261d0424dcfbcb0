# `make test`: install the package with its test extras, check lint and format (ruff), then run the whole suite
# (what CI runs) on two workers, each test file on one worker, which builds the file's fixtures once.
.PHONY: test
test:
	python -m pip install -q -e ".[test]"
	ruff check .
	ruff format --check .
	python -m pytest -q -n 2 --dist loadfile
