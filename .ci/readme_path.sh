#!/usr/bin/env bash
# The README's newcomer path, as the README writes each command, each step timed. A failing step
# prints its log's tail, then one line naming it, and exits 1. Servers are bounded waits on
# 127.0.0.1, stopped (their whole process group) when answered or on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# The README calls .venv/bin/<tool>; DVC stages and `mlflow models serve` call bare names.
export PATH="$PWD/.venv/bin:$PATH"
export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 DVC_NO_ANALYTICS=1 HF_HUB_OFFLINE=1 \
  TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg
CHAMPION=models:/fashiongan-conditional@champion
EXPERIMENT="ci-tiny-$$"
WORK=$(mktemp -d)
SERVERS=()

stop_servers() {
  for pid in "${SERVERS[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || continue
    for _ in $(seq 20); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  SERVERS=()
}
# The tiny experiment is removed however the script ends (no experiment of that name: a no-op).
trap 'stop_servers; dvc exp remove "$EXPERIMENT" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step NAME SECONDS COMMAND...: run it bounded, print its time or fail naming it. A function
# (below) bounds each command it runs by $LIMIT, and joins them with && (no set -e inside `if`).
step() {
  local name=$1 start=$SECONDS run
  LIMIT=$2
  shift 2
  if declare -F "$1" >/dev/null; then run=("$@"); else run=(timeout "$LIMIT" "$@"); fi
  if ! "${run[@]}" >"$WORK/$name.log" 2>&1; then
    tail -n 15 "$WORK/$name.log" | sed 's/^/    /'
    echo "readme path: step '$name' failed after $((SECONDS - start)) s (limit $LIMIT s): $*"
    exit 1
  fi
  printf 'readme path: %-10s %4d s  %s\n' "$name" $((SECONDS - start)) "$*"
}

free_port() { python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# answers PID URL SECONDS [JSON]: wait until URL answers 200 (to a POST of JSON when given) while
# process PID lives; print the status and the start of the body.
answers() {
  python - "$@" <<'EOF'
import pathlib, sys, time, urllib.request
pid, url, limit, body = sys.argv[1], sys.argv[2], float(sys.argv[3]), (sys.argv[4:] or [None])[0]
deadline, error = time.monotonic() + limit, "no answer"
while time.monotonic() < deadline:
    stat = pathlib.Path(f"/proc/{pid}/stat")
    if not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
        sys.exit(f"the server exited before {url} answered ({error})")
    request = urllib.request.Request(url, body and body.encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            print(response.status, response.read(200).decode(errors="replace"))
            sys.exit(0)
    except OSError as err:
        error = err
        time.sleep(1)
sys.exit(f"{url}: {error} after {limit:.0f} s")
EOF
}

# serving URL MAKE_ARGS...: start `make MAKE_ARGS` in its own process group, wait up to $LIMIT s
# for URL to answer 200 (to the JSON in $REQUEST when set) with $EXPECT in the body, then stop it.
serving() {
  local url=$1
  shift
  setsid make "$@" >"$WORK/server.log" 2>&1 &
  SERVERS+=("$!")
  answers "$!" "$url" "$LIMIT" ${REQUEST:+"$REQUEST"} >"$WORK/answer.txt" ||
    { tail -n 15 "$WORK/server.log"; return 1; }
  cat "$WORK/answer.txt" && grep -q -- "$EXPECT" "$WORK/answer.txt" || return 1
  stop_servers
}

generates() {
  timeout "$LIMIT" fashiongan generate --model "$CHAMPION" --text "a dark coat" --n 4 \
    --out "$WORK/x.npz" &&
    python -c "import numpy as np; n = len(np.load('$WORK/x.npz')['images']); assert n == 4, n"
}

searches() {
  timeout "$LIMIT" fashiongan search --env smoke --model "$CHAMPION" --text "a dark coat" --k 5 \
    >"$WORK/search.json" &&
    python -c "import json; r = json.load(open('$WORK/search.json'))['results']; assert len(r) == 5"
}

experiments() {
  timeout "$LIMIT" dvc exp run --temp -n "$EXPERIMENT" \
    -S 'conf/base/parameters_train_gan.yml:baseline.training.iterations=100' train_baseline &&
    timeout 120 dvc exp show --no-pager --csv >"$WORK/exp_show.csv" &&
    grep "^$EXPERIMENT," "$WORK/exp_show.csv"
}

# The README's `dvc plots diff main epochs2`: this branch (HEAD when detached) against the tiny
# experiment; its HTML page (written outside the work tree, -o) must draw the experiment's
# baseline history.
plots_diff() {
  timeout "$LIMIT" dvc plots diff "$(git rev-parse --abbrev-ref HEAD)" "$EXPERIMENT" \
    -o "$WORK/plots" &&
    grep -q "data/08_reporting/baseline/default/training_history.csv" "$WORK/plots/index.html" &&
    grep -q "$EXPERIMENT" "$WORK/plots/index.html"
}

builds_viz() { timeout "$LIMIT" make viz-build && test -s build/index.html; }

step smoke 1200 make smoke
step generate 300 generates
step search 300 searches
step dvc-exp 600 experiments
step dvc-plots 120 plots_diff
step viz-build 300 builds_viz
port=$(free_port)
REQUEST='{"dataframe_split": {"columns": ["text"], "data": [["a dark coat"]]}, "params": {"n": 1}}' \
  EXPECT='"predictions"' step serve 240 serving "http://127.0.0.1:$port/invocations" serve SERVE_PORT="$port"
port=$(free_port)
REQUEST='' EXPECT='<html' step app 240 serving "http://127.0.0.1:$port/" app APP_PORT="$port"
echo "readme path: every step passed in $SECONDS s"
