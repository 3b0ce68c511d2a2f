#!/usr/bin/env bash
# Set up whatever is missing, then show the main job on the embedded SQLite queue: a real
# generate_video task on the tiny CPU model goes Queued → In Progress → Complete.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
hw() { .venv/bin/python -m headless_wan "$@"; }

export HW_SQLITE_PATH="${HW_SQLITE_PATH:-var/demo/queue.sqlite3}" HW_OUTPUT_DIR="${HW_OUTPUT_DIR:-var/demo/outputs}"
task_id=$(hw submit examples/generate_video.json)
echo "== submitted $task_id"
hw tasks
echo "== running the worker until the queue is drained (tiny model, CPU)"
hw worker --drain --model-override tiny
echo "== done"
hw tasks
hw tasks --status Complete | grep -q "$task_id" || { echo "demo: task $task_id did not complete" >&2; exit 1; }
