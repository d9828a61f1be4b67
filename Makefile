# The project's vocabulary. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv: on PATH, else as a module of python3 (installed on first use).
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
STAGE ?= dev
PYTEST_ARGS ?=

.PHONY: help uv install browser run demo test unit integration race lint fmt tools build deploy bench clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

uv: ## make sure uv is available (python3 -m pip install uv when it is not)
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) --version

install: uv ## install the runtime and dev dependencies from uv.lock into .venv
	@$(UV) sync --frozen --quiet

browser: ## headless Chromium for the report's rendering test (apt-get install chromium when missing)
	@bash infra/scripts/chromium.sh

run: install ## the whole application locally on DynamoDB Local (HTTP API :3000, EventBridge/SQS :3001); FRESH=1 starts empty
	@$(UV) run python -m infra.ddb_local install >/dev/null
	@$(UV) run loyalty local serve $(if $(FRESH),--fresh)

demo: install ## while `make run` serves (second terminal): a synthetic marketplace through the local stack
	@$(UV) run loyalty local demo

test: install browser ## run every test (unit with moto, integration and the local stack's package on DynamoDB Local)
	@$(UV) run python -m infra.ddb_local install
	@$(UV) run pytest $(PYTEST_ARGS)

unit: install ## run the unit tests only (no DynamoDB Local)
	@$(UV) run pytest tests/unit $(PYTEST_ARGS)

integration: install browser ## run the integration tests only (DynamoDB Local)
	@$(UV) run pytest tests/integration $(PYTEST_ARGS)

race: install ## the concurrency tests at the issues' 200 trials (make test runs fewer; several minutes)
	@$(UV) run python -m infra.ddb_local install >/dev/null
	@PERK_RACE_TRIALS=200 CUSTOMER_HOLD_TRIALS=200 CAMPAIGN_RACE_TRIALS=200 WALLET_RACE_TRIALS=200 \
		$(UV) run pytest \
		"tests/integration/test_perks_redemption.py::test_sixteen_concurrent_requests_for_the_last_care_day_never_overdraw" \
		tests/integration/test_customer_points.py::test_concurrent_holds_never_hold_more_than_available \
		tests/integration/test_campaigns.py::test_concurrent_orders_never_spend_past_the_budget \
		tests/integration/test_customer_wallet.py::test_concurrent_wallet_holds_never_hold_more_than_the_balance \
		$(PYTEST_ARGS)

lint: install ## ruff, mypy, and the template checks (sam validate --lint, cfn-lint, checkov)
	@$(UV) run ruff check .
	@$(UV) run ruff format --check .
	@$(UV) run mypy shared infra bench tests tools/sam-local-lite
	@for f in functions/*/app.py; do $(UV) run mypy $$f || exit 1; done
	@bash infra/scripts/lint-template.sh

fmt: install ## format and autofix the code
	@$(UV) run ruff format .
	@$(UV) run ruff check --fix .

tools: ## install the pinned SAM CLI, cfn-lint and checkov into .tools/ (apart from .venv)
	@bash infra/scripts/tools.sh ensure

build: install ## sam build for python3.13 on arm64 (finds python3.13, e.g. pyenv's)
	@bash infra/scripts/build.sh

deploy: build ## sam deploy to STAGE=dev|staging|prod (needs AWS credentials)
	@bash infra/scripts/tools.sh exec sam deploy --config-env $(if $(filter dev,$(STAGE)),default,$(STAGE))

bench: install ## measure units and speed on DynamoDB Local (about 40 minutes, the fuzzing 8 of them); results in bench/results/
	@$(UV) run python -m infra.ddb_local install >/dev/null
	@$(UV) run python -m bench.ingestion --update-readme README.md
	@$(UV) run python -m bench.customers --update-readme README.md
	@$(UV) run python -m bench.tiers
	@$(UV) run python -m bench.ratings
	@$(UV) run python -m bench.perks
	@$(UV) run python -m bench.dividend
	@$(UV) run python -m bench.digest --update-readme docs/audit.md
	@$(UV) run python -m bench.stats --update-readme docs/stats.md
	@$(UV) run python -m bench.coldstart --update-readme README.md
	@$(UV) run python -m bench.load --update-readme README.md
	@$(UV) run python -m bench.fuzz --update-readme README.md
	@$(UV) run python -m bench.cost

clean: ## remove build outputs and caches (keeps .local data)
	rm -rf .build .aws-sam .pytest_cache .mypy_cache .ruff_cache
