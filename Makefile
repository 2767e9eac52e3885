# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install lock run dev banner worker migrate test lint bench bench-load bench-stream bench-accuracy bench-adaptation bench-enrollment bench-scale bench-bulk bench-spoof bench-spoof-speed calibration-ge2e scale-ge2e clean-db

help:
	@echo "make run     set up .venv, migrate, serve on http://127.0.0.1:$(PORT) (gunicorn)"
	@echo "make dev     the same with Django's autoreloading development server"
	@echo "make test    run the whole test suite (embedded PostgreSQL + pgvector, Redis)"
	@echo "make worker  start a Celery worker (needs CELERY_BROKER_URL)"
	@echo "make bench   measure the speaker engines, write docs/BENCHMARKS.md"
	@echo "make bench-load  concurrent identify through HTTP, in-process and Celery: docs/BENCHMARKS.md"
	@echo "make bench-stream  WS /v1/voiceprint/stream: first partials, concurrent streams: docs/BENCHMARKS.md"
	@echo "make bench-accuracy  decisions on household, noisy probes: docs/ACCURACY.md"
	@echo "make bench-adaptation  safe adaptation over time, off and on: docs/ADAPTATION.md"
	@echo "make bench-enrollment  enrollment length and sample gates: docs/ENROLLMENT.md"
	@echo "make bench-scale  nearest-voice search at 1 M voices (up to an hour): docs/BENCHMARKS.md"
	@echo "               (SCALE_VOICES=20000 for a run of a few minutes)"
	@echo "make bench-bulk  bulk imports, index kept row by row vs fast path: docs/BENCHMARKS.md"
	@echo "make bench-spoof  anti-spoofing: default model and threshold: docs/ACCURACY.md"
	@echo "make bench-spoof-speed  what anti-spoofing adds to a probe: docs/BENCHMARKS.md"
	@echo "make lint    ruff"
	@echo "make lock    record the installed versions in constraints.txt (after a green make test)"

# torch is installed first and pinned: this CPU build is on the machines' disk, and any
# other spec would download several GB of CUDA.
# Everything else is constrained to constraints.txt: the versions the suite last passed with.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# After a dependency change in pyproject.toml and a green `make test`: record what passed.
lock: install
	{ sed -n '1,3p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -iv '^torch=='; } > constraints.tmp
	mv constraints.tmp constraints.txt

migrate: install
	$(PY) manage.py migrate --noinput

# config/serve.py owns the embedded database (starts it, restarts it if it dies, stops it
# on Ctrl-C or SIGTERM), migrates, then runs the web server.
run: install
	@$(MAKE) --no-print-directory banner
	$(PY) -m config.serve --port $(PORT)

dev: install
	@$(MAKE) --no-print-directory banner
	$(PY) -m config.serve --port $(PORT) --dev

banner:
	@echo ""
	@echo "Voiceprint service on http://127.0.0.1:$(PORT)  (health: /healthz, docs: /api/docs/)"
	@echo "Create a tenant and its API token with:"
	@echo "    $(PY) manage.py create_tenant NAME"
	@echo ""

# A thread pool: the jobs a worker runs at once are embedded as one batch (engine.batching),
# which a process pool cannot do. One worker process uses about one core; start one per core.
WORKER_THREADS ?= 8
worker: migrate
	$(VENV)/bin/celery -A config worker --loglevel=INFO --pool threads --concurrency $(WORKER_THREADS)

# One torch thread per process: the suite embeds thousands of short clips, and two spinning
# OpenMP threads on a busy 2-core machine made each take seconds (timings are benchmarks'
# business, not the tests').
test: install
	VOICEPRINT_TORCH_THREADS=1 $(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m engine.bench --out docs/BENCHMARKS.md

# Concurrent identify through the production server of `make run` (its own port and
# database), in-process, then with 1 and 2 Celery workers on the local Redis (db 14), beside
# the raw engine in one process per core; about 10 minutes. Needs Redis at 127.0.0.1:6379.
bench-load: install
	VOICEPRINT_TORCH_THREADS=1 VOICEPRINT_SHARED_DIR=$(SHARED) $(PY) -m config.bench_load --out docs/BENCHMARKS.md

# Streaming identification (WS /v1/voiceprint/stream) through the production server: how soon
# the first right partial comes, compute per partial, and how many real-time streams the
# machine keeps up with (1 to 16 at once); about 6 minutes. STREAM_SECONDS, STREAM_LEVELS,
# STREAM_SPEAKERS, STREAM_SPEED for a shorter run (config/bench_stream.py).
bench-stream: install
	VOICEPRINT_TORCH_THREADS=1 VOICEPRINT_SHARED_DIR=$(SHARED) $(PY) -m config.bench_stream --out docs/BENCHMARKS.md

# The shared speech (VOICEPRINT_SHARED_DIR, else ../shared); its LibriSpeech speakers fall in
# three fixed parts by a hash of their label: cohort, fit (calibration) and report.
SHARED ?= $(or $(VOICEPRINT_SHARED_DIR),../shared)
LIBRISPEECH := $(SHARED)/audio/librispeech-train-clean-100

# The decision rule on households, short noisy probes and strangers, on the report speakers
# (none of them in the cohort or the calibration), and the clean-speech comparison.
bench-accuracy: install
	VOICEPRINT_TORCH_THREADS=1 $(PY) manage.py evaluate_household $(LIBRISPEECH) --engine ge2e --part report --reference \
		--markdown docs/ACCURACY.md

# Safe adaptation (voiceprint/adaptation.py) on household streams of the report speakers:
# acceptance and stranger accepts over time, adaptation off and on. The embeddings are kept in
# var/ and reused while the options stay the same (about 15 minutes on 2 busy cores, less again).
bench-adaptation: install
	VOICEPRINT_TORCH_THREADS=1 $(PY) manage.py evaluate_adaptation $(LIBRISPEECH) --engine ge2e --part report \
		--no-progress --cache var/adaptation-ge2e.pkl --markdown docs/ADAPTATION.md
# How much enrollment speech a voice needs, and what one short, noisy or clipped sample does
# to it: the same households and probes (2 s; clean, 10 and 5 dB babble) on the report speakers.
bench-enrollment: install
	VOICEPRINT_TORCH_THREADS=1 $(PY) manage.py evaluate_household $(LIBRISPEECH) --engine ge2e --part report \
		--windows 2 --snrs clean,10,5 --enrollment-seconds 1,1.5,2,3,4,5,6 --enrollment-gates \
		--no-progress --markdown docs/ENROLLMENT.md

# Bulk imports (voiceprint/services/bulk.py) with the HNSW index kept row by row and on the
# fast path (dropped, loaded, built), 20 k voices onto 0, 20 k and 40 k, in a scratch database:
# the measurement behind VOICEPRINT_BULK_INDEX_THRESHOLD (about 10 minutes on 2 busy cores).
bench-bulk: install
	$(PY) manage.py bench_bulk --voices 20000 --rounds 3 --markdown docs/BENCHMARKS.md

# The spoofing countermeasure (engine/spoof_bench.py): bona fide pieces of the shared speech,
# espeak-ng synthesis and simulated replays made in var/spoof-material (fit and report
# speakers apart), both AASIST sizes; the threshold is chosen on the fit speakers, the rates
# quoted on the report ones. Needs espeak-ng (apt-get install espeak-ng). Each piece costs
# about 2 s of CPU per model here: SPOOF_SPEAKERS LibriSpeech speakers (with the 5 Mandarin
# ones: about 120 bona fide pieces, 30 minutes on 2 busy cores); empty for all 251 (hours).
SPOOF_SPEAKERS ?= 40
bench-spoof: install
	$(PY) -m engine.spoof_bench --audio $(SHARED)/audio --work var/spoof-material \
		$(if $(SPOOF_SPEAKERS),--speakers $(SPOOF_SPEAKERS)) --out docs/ACCURACY.md

bench-spoof-speed: install
	$(PY) -m engine.spoof_speed --audio $(SHARED)/audio --out docs/BENCHMARKS.md

# How engine/heads/cohort-ge2e.npy and calibration-ge2e.json were made (a few minutes).
# One torch thread per process: thousands of short clips, and on a busy machine two spinning
# OpenMP threads made each 2 s clip take seconds instead of milliseconds.
calibration-ge2e: install
	VOICEPRINT_TORCH_THREADS=1 $(PY) manage.py build_cohort $(LIBRISPEECH) --engine ge2e --part cohort
	VOICEPRINT_TORCH_THREADS=1 $(PY) manage.py fit_calibration $(LIBRISPEECH) --engine ge2e --part fit

# Nearest-voice search at scale (voiceprint/scale_bench.py): 1 M voices of one tenant, 1,000
# small tenants and devices in a scratch database (voiceprint_bench, dropped at the end), drawn
# from the fitted GE2E distribution; latency and recall@1 per query type and ef_search, index
# build time, insert rate, index size, server memory. Up to an hour at 1 M on 2 busy cores.
SCALE_VOICES ?= 1000000
bench-scale: install
	$(PY) manage.py bench_scale --voices $(SCALE_VOICES) --markdown docs/BENCHMARKS.md

# How engine/heads/scale-ge2e.npz was made (a few minutes): GE2E embeddings of 2.5 s pieces of
# every shared LibriSpeech speaker, their between- and within-speaker covariance.
scale-ge2e: install
	VOICEPRINT_TORCH_THREADS=1 $(PY) manage.py fit_scale_distribution $(LIBRISPEECH) --engine ge2e --no-progress

# Stop and delete the embedded database (var/pgdata). Asks nothing: use with care.
clean-db:
	rm -rf var/pgdata
