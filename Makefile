# MNIST digit classifier as one SageMaker bring-your-own-container image.
# `make` lists the targets; every NAME ?= setting can be overridden: `make train EPOCHS=5`.

.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -o errexit -o nounset -o pipefail -c

# interpreter the virtual environment is made from
PYTHON ?= python3.11
# virtual environment for training, tests and tools (the SageMaker SDK v3)
VENV ?= .venv
# virtual environment for the SDK v2 tests (v2 and v3 share a package name)
VENV_V2 ?= .venv-sdk-v2
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
# extra `make bench` arguments: BENCH_ARGS="--quick" or "--skip-training"
BENCH_ARGS ?=
# extra `make bench-train` arguments: BENCH_TRAIN_ARGS="--only-best --seeds 5 --jobs 2"
BENCH_TRAIN_ARGS ?=
# models `make bench-committee` scores and `make combine` makes one of (what bench-train left for
# `best`, unless given): model folders, or model.tar.gz files for `combine`
COMMITTEE_MODELS ?= build/bench_train/best-seed-*/model
# where `make combine` writes the combined model: a new folder, or NAME.tar.gz
COMBINED ?= build/combined

# Docker client (BuildKit is required: Docker 20.10 or newer)
DOCKER ?= docker
# image repository name, locally and in ECR
IMAGE ?= sagemaker-mnist
# image tag: the git commit (with -dirty for uncommitted changes); `latest` is tagged too
TAG ?= $(shell git describe --always --dirty --abbrev=12 --exclude '*' 2>/dev/null || echo dev)
# base image; empty means the Dockerfile's default (debian:bookworm-slim from Docker Hub)
BASE_IMAGE ?=
# what `make base-image` builds from Debian packages, for hosts with no registry access
LOCAL_BASE_IMAGE ?= $(IMAGE)-base:bookworm
# Debian mirror for `make base-image`
DEBIAN_MIRROR ?= http://deb.debian.org/debian
# CA bundle that pip trusts during the build only (TLS-intercepting networks)
EXTRA_CA_CERT ?=
# more `docker build` arguments: BUILD_ARGS="--no-cache"
BUILD_ARGS ?=
# your own training script and inference module for `make local-script`, and their folder
SCRIPT ?= train.py
INFERENCE ?= inference.py
SOURCE_DIR ?= examples/mnist_script
# training instances for `make local-train` (2: distributed data-parallel across containers)
INSTANCES ?= 1
# AWS region and account of the ECR repository (asked of the AWS CLI when not set)
REGION ?= $(shell aws configure get region 2>/dev/null || echo us-east-1)
ACCOUNT ?= $(shell aws sts get-caller-identity --query Account --output text)

# port of `make mlflow-ui`
MLFLOW_PORT ?= 5000

PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PY_V2 := $(VENV_V2)/bin/python
STAMP_V2 := $(VENV_V2)/.installed

##@ General

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m [NAME=value ...]\n"} \
	  /^[a-zA-Z0-9_-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: venv
venv: $(STAMP) ## Make the virtual environment with the pinned dependencies

$(STAMP): docker/requirements.txt requirements-dev.txt
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --no-deps --require-hashes -r docker/requirements.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

.PHONY: venv-sdk-v2
venv-sdk-v2: $(STAMP_V2) ## Make the SDK v2 tests' environment

$(STAMP_V2): docker/requirements.txt requirements-sdk-v2.txt
	$(PYTHON) -m venv --clear $(VENV_V2)
	$(PY_V2) -m pip install --quiet --no-deps --require-hashes -r docker/requirements.txt
	$(PY_V2) -m pip install --quiet -r requirements-sdk-v2.txt
	touch $@

ENDPOINTS_JAR := container/serving/endpoints/endpoints.jar

.PHONY: endpoints
endpoints: $(ENDPOINTS_JAR) ## Compile the model server's plugin: /ping, /execution-parameters, /models (needs a JDK)

$(ENDPOINTS_JAR): $(wildcard container/serving/endpoints/*.java container/serving/endpoints/server/*.java) container/serving/endpoints/META-INF/services/* | $(STAMP)
	container/serving/endpoints/build.sh $(PY)

##@ Image

REGISTRY = $(ACCOUNT).dkr.ecr.$(REGION).amazonaws.com

.PHONY: build
build: ## Build the image IMAGE:TAG (and IMAGE:latest) from docker/Dockerfile
	DOCKER_BUILDKIT=1 $(DOCKER) build --file docker/Dockerfile \
	  $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
	  $(if $(EXTRA_CA_CERT),--secret id=ca$(,)src=$(EXTRA_CA_CERT)) \
	  --tag $(IMAGE):$(TAG) --tag $(IMAGE):latest $(BUILD_ARGS) .
	@$(DOCKER) image inspect --format 'built $(IMAGE):$(TAG): {{.Size}} bytes' $(IMAGE):$(TAG)

, := ,

.PHONY: push
push: ## Push IMAGE:TAG and IMAGE:latest to ECR (creates the repository if missing)
	aws ecr describe-repositories --region $(REGION) --repository-names $(IMAGE) >/dev/null 2>&1 \
	  || aws ecr create-repository --region $(REGION) --repository-name $(IMAGE) >/dev/null
	aws ecr get-login-password --region $(REGION) \
	  | $(DOCKER) login --username AWS --password-stdin $(REGISTRY)
	$(DOCKER) tag $(IMAGE):$(TAG) $(REGISTRY)/$(IMAGE):$(TAG)
	$(DOCKER) tag $(IMAGE):$(TAG) $(REGISTRY)/$(IMAGE):latest
	$(DOCKER) push $(REGISTRY)/$(IMAGE):$(TAG)
	$(DOCKER) push $(REGISTRY)/$(IMAGE):latest
	@echo "image URI: $(REGISTRY)/$(IMAGE):$(TAG)"

.PHONY: base-image
base-image: ## Build LOCAL_BASE_IMAGE from Debian packages (root, debootstrap); then BASE_IMAGE=that
	@if $(DOCKER) image inspect $(LOCAL_BASE_IMAGE) >/dev/null 2>&1; then \
	  echo "$(LOCAL_BASE_IMAGE) exists (docker rmi it to rebuild)"; \
	else DOCKER=$(DOCKER) MIRROR=$(DEBIAN_MIRROR) docker/base-image.sh $(LOCAL_BASE_IMAGE); fi

.PHONY: wheelhouse
wheelhouse: | $(STAMP) ## Download every pinned package into docker/wheelhouse: the build then needs no index
	$(PY) -m pip download --quiet --no-deps --require-hashes -r docker/requirements.txt -d docker/wheelhouse

.PHONY: lock
lock: ## Re-pin docker/requirements.txt, with hashes, from docker/requirements.in (pip-tools)
	$(PYTHON) -m venv build/pip-tools && build/pip-tools/bin/pip install --quiet pip-tools==7.6.2
	CUSTOM_COMPILE_COMMAND="make lock" build/pip-tools/bin/pip-compile --quiet --generate-hashes \
	  --strip-extras --no-emit-index-url --no-emit-find-links --unsafe-package triton \
	  --unsafe-package pip --output-file docker/requirements.txt docker/requirements.in

##@ Data and training

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
serve: $(ENDPOINTS_JAR) ## Serve build/opt_ml/model (from `make train`) on PORT with multi-model-server
	SAGEMAKER_BASE_DIR=$(CURDIR)/build/opt_ml SAGEMAKER_BIND_TO_PORT=$(PORT) PYTHONPATH=$(CURDIR) $(PY) -m container serve

.PHONY: combine
combine: data ## One model of COMMITTEE_MODELS that serves their mean probabilities, in COMBINED, scored on the test set
	$(PY) -m container combine --out $(COMBINED) --test $(DATA)/testing $(COMMITTEE_MODELS)

##@ Tests and checks

# The SDK v2 tests, which run in their own environment.
V2_TESTS := tests/unit/local_test/test_sdk_v2.py tests/container/test_local_mode_v2.py \
  tests/container/test_script_mode_v2.py

.PHONY: test
test: data $(ENDPOINTS_JAR) $(STAMP_V2) ## Run every tier of tests, then the SDK v2 tests (the container tier needs a Docker engine)
	$(PY) -m pytest $(PYTEST_ARGS)
	$(PY_V2) -m pytest $(V2_TESTS) $(PYTEST_ARGS)

.PHONY: test-sdk-v2
test-sdk-v2: data $(ENDPOINTS_JAR) $(STAMP_V2) ## SDK v2 tests in their own environment: cloud requests, local mode
	$(PY_V2) -m pytest $(V2_TESTS) $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: data ## Unit tests: no Docker, no model server
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

.PHONY: test-serving
test-serving: data $(ENDPOINTS_JAR) ## Serving tests: the real multi-model-server, no Docker
	$(PY) -m pytest tests/serving $(PYTEST_ARGS)

.PHONY: test-container
test-container: data $(ENDPOINTS_JAR) ## Container tests: the image, Docker and SDK v3 local mode
	$(PY) -m pytest tests/container $(PYTEST_ARGS)

.PHONY: lint
lint: | $(STAMP) ## Check the code with ruff (lint rules and formatting)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: fmt
fmt: | $(STAMP) ## Format the code and apply ruff's safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

##@ Benchmarks

.PHONY: bench-serve
bench-serve: data $(ENDPOINTS_JAR) ## Measure serving latency, throughput and start-up of build/opt_ml/model
	@test -f build/opt_ml/model/model.pth || $(MAKE) train
	$(PY) -m benchmarks.bench_serve --model-dir build/opt_ml/model --data $(DATA)

.PHONY: peer-image
peer-image: image # Build the peer for `make bench`: the stock PyTorch serving stack on this image
	DOCKER_BUILDKIT=1 $(DOCKER) build --file benchmarks/peer/Dockerfile \
	  --build-arg IMAGE=$(IMAGE):latest $(if $(EXTRA_CA_CERT),--secret id=ca$(,)src=$(EXTRA_CA_CERT)) \
	  --tag $(IMAGE)-peer:latest benchmarks/peer

.PHONY: bench
bench: data peer-image ## Training, serving, start-up and size against the stock PyTorch stack (results/)
	DOCKER=$(DOCKER) $(PY) -m benchmarks.bench --image $(IMAGE):latest --peer $(IMAGE)-peer:latest \
	  --data $(DATA) $(BENCH_ARGS)

.PHONY: bench-train
bench-train: data ## Measure accuracy, time to 99% and memory of the training presets
	$(PY) -m benchmarks.bench_train --data $(DATA) $(BENCH_TRAIN_ARGS)

.PHONY: bench-committee
bench-committee: data ## The models bench-train left, alone and as committees averaging their probabilities
	$(PY) -m benchmarks.committee --data $(DATA) $(COMMITTEE_MODELS)

.PHONY: bench-gpu
bench-gpu: data $(ENDPOINTS_JAR) ## The GPU figures: training with the data on the device, the best preset, predict_fn, serve
	$(PY) -m benchmarks.bench_gpu --data $(DATA)

##@ SageMaker local mode (the SDK runs the image with docker-compose)

JOBS := $(PY) -m local_test.jobs --image-uri $(IMAGE):latest

.PHONY: image
image: # Build the image when IMAGE:latest is missing
	@$(DOCKER) image inspect $(IMAGE):latest >/dev/null 2>&1 || $(MAKE) build

.PHONY: local-train
local-train: data image ## Train with the SDK's local mode: EPOCHS, INSTANCES, HYPERPARAMETERS
	$(JOBS) train --instances $(INSTANCES) epochs=$(EPOCHS) $(HYPERPARAMETERS)

.PHONY: local-script
local-script: data image ## Your own code: train SCRIPT, then serve it with INFERENCE and predict
	$(JOBS) train --entry-point $(SCRIPT) --source-dir $(SOURCE_DIR) --instances $(INSTANCES) \
	  $(if $(filter-out 1,$(INSTANCES)),--distribution torchrun) \
	  epochs=$(EPOCHS) $(HYPERPARAMETERS)
	$(JOBS) predict --entry-point $(INFERENCE) --source-dir $(SOURCE_DIR)

.PHONY: local-predict local-deploy
local-predict: data image ## Deploy the last model locally, predict JSON, npy and PNG, delete it
	$(JOBS) predict
local-deploy: local-predict

.PHONY: local-transform
local-transform: data image ## Batch transform of the test set (JSON lines, SplitType=Line)
	$(JOBS) transform

.PHONY: local-sweep
local-sweep: data image ## The original experiment (baseline widths 2-32, then the default model) as one MLflow experiment
	$(JOBS) sweep epochs=$(EPOCHS)

.PHONY: mlflow-ui
mlflow-ui: | $(STAMP) ## The MLflow UI on the runs `make local-sweep` recorded (build/mlflow), on MLFLOW_PORT
	$(PY) -m local_test.mlflow_server --store build/mlflow --port $(MLFLOW_PORT)

.PHONY: local-mme
local-mme: data image ## One multi-model endpoint for the experiment's five widths: accuracy, latency
	$(PY) -m local_test.multi_model --image $(IMAGE):latest --epochs $(EPOCHS)

##@ Reliability

.PHONY: soak
soak: data $(ENDPOINTS_JAR) ## Reliability at full size: 10,000 malformed requests, 60 s of load, a 100 MB body, faults
	FUZZ_EXAMPLES=10000 LOAD_SECONDS=60 ASYNC_PAYLOAD_MB=100 DOCKER=$(DOCKER) $(PY) -m pytest -s \
	  tests/container/test_reliability.py tests/container/test_endpoint_limits.py \
	  tests/serving/test_faults.py $(PYTEST_ARGS)

.PHONY: audit
audit: ## Look up every pinned dependency of the image in a vulnerability database (pip-audit)
	$(PYTHON) -m venv build/pip-audit && build/pip-audit/bin/pip install --quiet pip-audit==2.10.1
	build/pip-audit/bin/pip-audit --requirement docker/requirements.txt --require-hashes \
	  --disable-pip --no-deps --progress-spinner off

.PHONY: clean
clean: ## Remove build outputs (keeps the data and the virtual environment)
	rm -rf build results .pytest_cache
