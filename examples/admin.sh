#!/usr/bin/env bash
# The admin loop from a shell: a project with a budget, a key, and what it spent.
# Uses SYMBIOSIS_DATABASE_URL (default: SQLite in ./symbiosis.db), migrated as needed.
set -euo pipefail

symbiosis projects create checkout --budget 200 --budget-period monthly --rpm 600
symbiosis keys create --project checkout --name web --models gpt-4o-mini,claude-sonnet \
  --rpm 120 --budget 20 --expires-in 90d
symbiosis keys list --project checkout
symbiosis usage --project checkout --group-by day
symbiosis usage --group-by project --format csv > usage.csv
