# `make test`: install the package with its test extras, check lint and format (ruff), then run the whole suite
# (what CI runs) on two workers, each test file on one worker, which builds the file's fixtures once; files go
# out in the order tests/conftest.py gives them (those with slow tests first), so no worker ends on a long file.
# `make test-fast`: the same without the tests marked `slow` (see pyproject.toml), for the edit-test loop.
.PHONY: test test-fast
test:
	python -m pip install -q -e ".[test]"
	ruff check .
	ruff format --check .
	python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

test-fast:
	python -m pip install -q -e ".[test]"
	ruff check .
	ruff format --check .
	python -m pytest -q -n 2 --dist loadfile -m "not slow"
