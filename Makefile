# MNIST digit classifier as one SageMaker bring-your-own-container image.
# `make` lists the targets; every NAME ?= setting can be overridden: `make train EPOCHS=5`.

.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c

# interpreter the virtual environment is made from
PYTHON ?= python3.11
# virtual environment for training, tests and tools
VENV ?= .venv
# channel folders: $(DATA)/training and $(DATA)/testing
DATA ?= data
# epochs for `make train`
EPOCHS ?= 2
# more for `make train`, as NAME=VALUE words: "lr=0.05 augment=true"
HYPERPARAMETERS ?=
# port for `make serve`
PORT ?= 8080
# S3 bucket for `make upload-data`
BUCKET ?=
# key prefix under BUCKET
PREFIX ?= mnist
# extra pytest arguments: PYTEST_ARGS="-k data -x"
PYTEST_ARGS ?=

PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m [NAME=value ...]\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: venv
venv: $(STAMP) ## Make the virtual environment with the pinned dependencies

$(STAMP): docker/requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

PING_JAR := container/ping_plugin/truthful-ping.jar
MMS_JAR = $(shell $(PY) -c 'import mms, os; print(os.path.join(os.path.dirname(mms.__file__), "frontend", "model-server.jar"))')

.PHONY: ping-plugin
ping-plugin: $(PING_JAR) ## Compile the model server's truthful /ping (needs a JDK)

$(PING_JAR): container/ping_plugin/TruthfulPing.java | $(STAMP)
	rm -rf build/ping_plugin && mkdir -p build/ping_plugin
	javac --release 17 -d build/ping_plugin -cp "$(MMS_JAR)" $<
	cp -r container/ping_plugin/META-INF build/ping_plugin/
	jar cf $@ -C build/ping_plugin .

.PHONY: data
data: $(DATA)/training $(DATA)/testing ## Write real MNIST as SageMaker channel folders

$(DATA)/training $(DATA)/testing: | $(STAMP)
	$(PY) -m local_test.prepare_data --out $(DATA)

.PHONY: upload-data
upload-data: data ## Copy the channel folders to s3://BUCKET/PREFIX for cloud training
	@test -n "$(BUCKET)" || { echo "set BUCKET=<your S3 bucket>"; exit 2; }
	aws s3 sync $(DATA) s3://$(BUCKET)/$(PREFIX)
	@echo "channels: s3://$(BUCKET)/$(PREFIX)/training and .../testing"

.PHONY: train
train: data ## Train here through the SageMaker toolkit (no Docker); tree in build/opt_ml
	$(PY) -m local_test.opt_ml --base build/opt_ml --data $(DATA) epochs=$(EPOCHS) $(HYPERPARAMETERS)

.PHONY: serve
serve: $(PING_JAR) ## Serve build/opt_ml/model (from `make train`) on PORT with multi-model-server
	SAGEMAKER_BASE_DIR=$(CURDIR)/build/opt_ml SAGEMAKER_BIND_TO_PORT=$(PORT) PYTHONPATH=$(CURDIR) $(PY) -m container serve

.PHONY: test
test: data $(PING_JAR) ## Run the test suite
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: bench-serve
bench-serve: data $(PING_JAR) ## Measure serving latency, throughput and start-up of build/opt_ml/model
	@test -f build/opt_ml/model/model.pth || $(MAKE) train
	$(PY) -m local_test.bench_serve --model-dir build/opt_ml/model --data $(DATA)

.PHONY: bench-train
bench-train: data ## Measure accuracy, time to 99% and memory of the training presets
	$(PY) -m local_test.bench_train --data $(DATA)

.PHONY: clean
clean: ## Remove build outputs (keeps the data and the virtual environment)
	rm -rf build results .pytest_cache
