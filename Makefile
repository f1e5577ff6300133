# The 1022 mesh. `make run` brings up everything and a demo; `make test` runs the whole suite on a
# separate, freshly made Kafka and PostgreSQL. Both install what they need by themselves.
SHELL := /bin/bash
PY := .venv/bin/python
STAMP := .venv/.installed
TEST_ENV := MESH_STATE_DIR="$(CURDIR)/.local/test" KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093 PGPORT=55433
# Benchmarks get a Kafka and PostgreSQL of their own, so their traffic never lands in the demo's.
BENCH_ENV := MESH_STATE_DIR="$(CURDIR)/.local/bench" KAFKA_PORT=29092 KAFKA_CONTROLLER_PORT=29093 PGPORT=55434 \
	KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:29092

.PHONY: lock run down test test-unit test-integration test-e2e test-faults test-benchmarks
.PHONY: bench soak schemas infra clean

$(STAMP): pyproject.toml constraints.txt
	@command -v python3.11 >/dev/null || { echo "Python 3.11 is required" >&2; exit 1; }
	@# Debian's python3.11 makes no venv without python3.11-venv (ensurepip); a venv made without it has no pip.
	@python3.11 -c 'import ensurepip' 2>/dev/null || { test "$$(id -u)" = 0 && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-venv; } \
	  || { echo "python3.11-venv is required: apt-get install python3.11-venv" >&2; exit 1; }
	@test -x .venv/bin/pip || { rm -rf .venv; python3.11 -m venv .venv; }
	$(PY) -m pip install -q -c constraints.txt pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	@touch $(STAMP)

# constraints.txt, remade from pyproject.toml's pins in a fresh environment (needs PyPI).
lock:
	rm -rf .local/lock && python3.11 -m venv .local/lock
	.local/lock/bin/python -m pip install -q --upgrade pip
	.local/lock/bin/python -m pip install -q -e '.[test]'
	{ sed -n '/^#/p' constraints.txt; .local/lock/bin/python -m pip freeze --all --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .local/lock

# Kafka on another port (KAFKA_PORT, when 9092 is taken) is where the topics and the services go too.
infra run: export KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(or $(KAFKA_PORT),9092)

infra: $(STAMP)
	deploy/local/up.sh
	$(PY) deploy/topics.py

run: infra
	deploy/local/run.sh

# Everything this project started: the demo, and the suite's and the benchmarks' Kafka and PostgreSQL.
down:
	deploy/local/run.sh stop || true
	deploy/local/down.sh
	$(TEST_ENV) deploy/local/down.sh >/dev/null 2>&1 || true
	$(BENCH_ENV) deploy/local/down.sh >/dev/null 2>&1 || true

# The suite's Kafka and PostgreSQL are stopped however the run ends: failing (from the moment they
# are started, topics included), Ctrl-C, or its job's processes sent TERM. A signal ends the shell
# (trapped, bash would run the trap and go on to the next step), and its end stops them.
STOP_TEST_INFRA := trap '$(TEST_ENV) deploy/local/down.sh >/dev/null 2>&1' EXIT; trap 'exit 130' INT; \
	trap 'exit 143' TERM

# The suite's own Kafka (19092) and PostgreSQL (55433), wiped on every run so results repeat (on a
# fresh machine there is nothing to stop or wipe). Each target that starts them runs its tests in
# the same shell, under STOP_TEST_INFRA.
START_TEST_INFRA := deploy/local/install-browser.sh \
	&& { $(TEST_ENV) deploy/local/down.sh >/dev/null 2>&1 || true; } \
	&& { $(TEST_ENV) deploy/local/postgres.sh wipe >/dev/null 2>&1 || true; } \
	&& rm -rf .local/test && $(TEST_ENV) deploy/local/up.sh \
	&& KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19092 $(PY) deploy/topics.py

test: $(STAMP)
	$(STOP_TEST_INFRA); $(START_TEST_INFRA) && $(TEST_ENV) $(PY) -m pytest -ra

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

# One layer at a time, each on a freshly made test Kafka and PostgreSQL.
test-integration test-e2e test-faults test-benchmarks: test-%: $(STAMP)
	$(STOP_TEST_INFRA); $(START_TEST_INFRA) && $(TEST_ENV) $(PY) -m pytest -ra tests/$*

schemas: $(STAMP)
	$(PY) -m contracts.compat

# The end-to-end benchmark (open-loop load, durable settings, the bare-pipe ceiling), with one
# and with two router processes; BENCHMARKS.md has the figures and the other benchmarks.
# The first run warms up for a minute, not ten seconds: a broker just started takes two to three
# times its CPU for its first minute of the mesh's traffic (BENCHMARKS.md, "a young broker").
# The warm-up's figures are printed, not counted.
bench: $(STAMP)
	$(BENCH_ENV) deploy/local/up.sh
	$(BENCH_ENV) $(PY) deploy/topics.py
	mkdir -p .local/bench
	$(BENCH_ENV) $(PY) bench/bench_e2e.py --routers 1 --warmup 60 --json .local/bench/e2e-1.json
	$(BENCH_ENV) $(PY) bench/bench_e2e.py --routers 2 --json .local/bench/e2e-2.json

# 100 requests/s through the whole mesh for 30 minutes, memory of each service every minute.
soak: $(STAMP)
	$(BENCH_ENV) deploy/local/up.sh
	$(BENCH_ENV) $(PY) deploy/topics.py
	$(BENCH_ENV) $(PY) bench/soak.py --rate 100 --minutes 30

# PostgreSQL's data may live outside .local (postgres.sh: where its user cannot reach the clone):
# wiped where it is, or the next make run would find the old cases under a new Kafka and new keys.
clean: down
	deploy/local/postgres.sh wipe --demo-too >/dev/null 2>&1 || true
	$(TEST_ENV) deploy/local/postgres.sh wipe >/dev/null 2>&1 || true
	$(BENCH_ENV) deploy/local/postgres.sh wipe >/dev/null 2>&1 || true
	rm -rf .local .venv
