#!/usr/bin/env bash
# Set up whatever is missing, then show the main job on the embedded SQLite queue: a real VACE
# generation and a 3-image travel (orchestrator → segments → stitch) on the tiny CPU model go
# Queued → In Progress → Complete.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
hw() { .venv/bin/python -m headless_wan "$@"; }

export HW_SQLITE_PATH="${HW_SQLITE_PATH:-var/demo/queue.sqlite3}" HW_OUTPUT_DIR="${HW_OUTPUT_DIR:-var/demo/outputs}"
task_id=$(hw submit examples/generate_video.json)
travel_id=$(hw submit examples/travel_3_images.json)
echo "== submitted $task_id (vace) and $travel_id (travel_orchestrator)"
hw tasks
echo "== running the worker until the queue is drained (tiny model, CPU)"
hw worker --drain --model-override tiny
echo "== done"
hw tasks
complete=$(hw tasks --status Complete)
for id in "$task_id" "$travel_id"; do
    grep -q "$id" <<<"$complete" || { echo "demo: task $id did not complete" >&2; exit 1; }
done
echo "== outputs under $HW_OUTPUT_DIR/tasks/ (the travel's stitched video is the orchestrator's output above)"
