# attackprev: `make report` regenerates every committed report; `make test` runs the tests.
# Both create the virtual environment (.venv, Python >= 3.12) and install the project first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SHELL  := bash
.SHELLFLAGS := -o pipefail -c
# pip warns once per package about index folders named in this machine's pip.conf that do not exist; hide that line only
PIPQUIET := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: report test test-fast lint format bench validation mutation clean-venv

$(STAMP): pyproject.toml constraints.txt
	@py=$$(scripts/find-python) || exit 1; \
	if [ ! -x "$(PY)" ]; then echo "creating $(VENV) with $$py"; "$$py" -m venv "$(VENV)" || exit 1; fi
	@echo "installing attackprev and its test dependencies into $(VENV) (versions pinned by constraints.txt)"
	@$(PY) -m pip install --quiet --upgrade pip $(PIPQUIET)
	@$(PY) -m pip install --quiet -c constraints.txt -e '.[test]' $(PIPQUIET)
	@touch $(STAMP)

report: $(STAMP)
	$(VENV)/bin/attackprev evidence build
	$(PY) models/catalogue.py
	$(PY) models/t1102.py
	$(PY) models/simulate_example.py
	$(VENV)/bin/jupyter execute --inplace notebooks/*.ipynb
	$(PY) scripts/strip-notebook-timing notebooks/*.ipynb

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --dist loadfile  # one worker per test file: each file's module fixtures run once

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# every check of the headline model (held-out sources, SBC, model choice; several hours on two cores), then
# reports/validation.md from their figures; and the single-technique model's own suite
validation: $(STAMP)
	$(PY) -m attackprev.validation.sources
	$(PY) -m attackprev.validation.synthesis_sbc
	$(PY) -m attackprev.validation.comparison
	$(PY) -m attackprev.validation.summary
	$(PY) -m attackprev.validation

# mutation testing of the statistical core and the run pipeline (modules: pyproject.toml [tool.mutmut]), then the
# issue's known bug classes replayed one at a time (mutation/known_bugs/), then reports/mutation.md; about two hours
mutation: $(STAMP)
	@$(PY) -m pip install --quiet -c constraints.txt -e '.[mutation]' $(PIPQUIET)
	rm -rf mutants
	start=$$(date +%s); $(VENV)/bin/mutmut run --max-children 2 >mutation/run.log 2>&1 || { tail -n 40 mutation/run.log; exit 1; }; \
	minutes=$$(( ($$(date +%s) - start + 30) / 60 )); \
	$(PY) scripts/replay-known-bugs --json mutation/known_bugs.json; \
	$(PY) scripts/mutation-report --minutes $$minutes

bench: $(STAMP)
	$(PY) benchmarks/run.py --json reports/benchmarks.json  # the raw figures too: --from-json re-renders them

clean-venv:
	rm -rf $(VENV)
