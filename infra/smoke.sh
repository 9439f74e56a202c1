#!/usr/bin/env bash
# The smoke test of a wheelvault index: the whole round trip a consumer makes, then nothing left.
#
#   infra/smoke.sh            a deployment: PUBLIC_URL, VAULT_URL and STORAGE_BLOB_ENDPOINT from
#                             the environment, else from `azd env get-values`
#   infra/smoke.sh --local    the local stack of this checkout (`make run`)
#
# Steps, one line each: inputs, health (and an anonymous request refused), token (a throwaway
# publish token smoke-RUN), build (wheelvault-smoke, a wheel and an sdist, the version from the
# clock), upload (the wheel with twine to /legacy/), upload-blob (the sdist with `wheelvault
# upload --wait`: an upload SAS, the blob, Event Grid and the blob trigger), index-url (`wheelvault
# token url`), install-pip and install-uv (through that one URL into fresh virtual environments,
# the module imported), rotate (the new value works, the old one still does within its overlap,
# the index URL follows). On exit, success or failure, the cleanup revokes the token, deletes
# every file it uploaded (tombstoned: a name is never published again, hence a new version every
# run) and removes its temporary directory. A failure prints `smoke: FAILED at STEP: WHY` and the
# step's last log lines; no token value is ever printed (values and URL passwords are masked).
#
# Against Azure the `wheelvault` command signs in as you (`az login`): Key Vault Secrets Officer
# on the vault for the token, blob data access to the account for the delete.
#
# Knobs:
#   SMOKE_FAIL_AT=STEP       fail STEP on purpose (proves the cleanup runs; the tests use it)
#   SMOKE_STACK_ROOT=DIR     with --local: the checkout whose stack to use (default: this one)
#   SMOKE_ROTATE_WAIT=SECS   how long a rotated value may take to be accepted (default 120: the
#                            front door caches a token's values, WHEELVAULT_TOKEN_CACHE_SECONDS)
set -euo pipefail

CHECKOUT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY="$CHECKOUT/.venv/bin/python"
WHEELVAULT="$CHECKOUT/.venv/bin/wheelvault"
PROJECT=wheelvault-smoke
MODULE=wheelvault_smoke
RUN_ID="$(date -u +%Y%m%d%H%M%S)-$$"
VERSION="0.${RUN_ID/-/.}" # 0.YYYYmmddHHMMSS.PID: new every run, whatever was tombstoned before
TOKEN_NAME="smoke-$RUN_ID"
WHEEL_NAME="${MODULE}-${VERSION}-py3-none-any.whl"
SDIST_NAME="${MODULE}-${VERSION}.tar.gz"
ROTATE_WAIT=${SMOKE_ROTATE_WAIT:-120}

STEP=inputs
FAILED=""
TOKEN=""
NEW_TOKEN=""
TOKEN_CREATED=""
UPLOADED=() # every file an upload was tried for: the cleanup deletes each
WORK=""
LOG=/dev/null

# -- output -------------------------------------------------------------------------------------

say() { printf 'smoke: %s\n' "$*"; }

mask() { # every token value and URL password on stdin replaced by ***
    sed -E -e 's/wvt_[A-Za-z0-9_-]+/wvt_***/g' -e 's#(://[^:/@ ]+:)[^@/ ]+@#\1***@#g'
}

fail() { # fail WHY: the one failure line, the step's last log lines (masked), then the cleanup
    FAILED=1
    say "FAILED at $STEP: $*" | mask
    if [[ -s $LOG ]]; then tail -n 5 "$LOG" | mask | sed 's/^/  | /'; fi
    exit 1
}

ok() { say "$STEP: ok ($*)" | mask; }

begin() { # begin STEP: a fresh log; SMOKE_FAIL_AT=STEP makes it fail here, on purpose
    STEP=$1
    LOG="$WORK/$STEP.log"
    : >"$LOG"
    if [[ ${SMOKE_FAIL_AT:-} == "$STEP" ]]; then fail "deliberate failure (SMOKE_FAIL_AT=$STEP)"; fi
}

# -- cleanup: always, once ----------------------------------------------------------------------

cleanup() {
    local status=$? left=()
    trap - EXIT
    if [[ $status -eq 130 || $status -eq 143 ]]; then
        say "FAILED at $STEP: interrupted"
    elif [[ $status -ne 0 && -z $FAILED ]]; then
        say "FAILED at $STEP: exit status $status"
    fi
    if [[ -n $TOKEN_CREATED ]]; then
        if "${WV[@]}" token revoke "$TOKEN_NAME" >/dev/null 2>"$WORK/revoke.log"; then
            say "cleanup: token $TOKEN_NAME revoked"
        else
            left+=("$(by_hand token revoke "$TOKEN_NAME")")
            say "cleanup FAILED: token $TOKEN_NAME not revoked: $(tail -n 1 "$WORK/revoke.log" | mask)"
        fi
    fi
    local file
    for file in ${UPLOADED[@]+"${UPLOADED[@]}"}; do # (bash 3.2: an empty array is "unbound")
        delete_file "$file" || left+=("$(by_hand delete "$PROJECT" "$file")")
    done
    if [[ -n $WORK ]]; then rm -rf "$WORK" && say "cleanup: temporary files removed"; fi
    if ((${#left[@]} > 0)); then
        say "left behind; clean up by hand with:"
        printf '  %s\n' "${left[@]}"
        [[ $status -ne 0 ]] || status=1
    fi
    if [[ $status -eq 0 ]]; then say "passed: $PUBLIC_URL"; fi
    exit "$status"
}

by_hand() { # the wheelvault command line that does it, endpoints included
    local line
    line=$(printf '%q ' "${WV[@]}" "$@")
    printf '%s' "${line% }"
}

delete_file() { # an upload refused before publishing leaves no file to delete: that is fine
    local why
    if "${WV[@]}" delete --reason "infra/smoke.sh run $RUN_ID" "$PROJECT" "$1" \
        >/dev/null 2>"$WORK/delete.log"; then
        say "cleanup: $1 deleted (tombstoned)"
        return 0
    fi
    why=$(tail -n 1 "$WORK/delete.log" | mask)
    if [[ $why != *"is not a file of project"* ]]; then
        say "cleanup FAILED: $1 not deleted: $why"
        return 1
    fi
    local state
    state=$("${WV[@]}" status --timeout 0 "$1" 2>&1 | tail -n 1 | mask) || true
    case $state in
    "$1: pending"*) # the blob trigger may still publish it: only a later delete removes it
        say "cleanup FAILED: $1 is still waiting in uploads, not published yet; delete it once it is"
        return 1
        ;;
    "$1: quarantined"*) say "cleanup: $1 was refused, not published: ${state#"$1: "}" ;;
    *) say "cleanup: $1 was never published, nothing to delete" ;;
    esac
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# -- inputs -------------------------------------------------------------------------------------

from_azd() { # PUBLIC_URL, VAULT_URL and STORAGE_BLOB_ENDPOINT from the azd environment, if any
    local line values
    command -v azd >/dev/null || return 0
    values=$(cd "$CHECKOUT" && azd env get-values 2>/dev/null) || return 0 # azd finds azure.yaml
    while IFS= read -r line; do
        if [[ $line =~ ^(PUBLIC_URL|VAULT_URL|STORAGE_BLOB_ENDPOINT)=\"(.*)\"$ ]]; then
            [[ -n ${!BASH_REMATCH[1]:-} ]] || printf -v "${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
        fi
    done <<<"$values"
}

local_public_url() { # the front door of the running stack, from its .local/stack.json
    "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["public_url"])' \
        "$1/.local/stack.json" 2>/dev/null
}

resolve_inputs() {
    [[ -x $WHEELVAULT ]] || fail "$WHEELVAULT is missing: run \`make\` in $CHECKOUT first"
    if [[ ${1:-} == --local ]]; then
        local root=${SMOKE_STACK_ROOT:-$CHECKOUT}
        unset "${!WHEELVAULT_@}" # the stack's endpoints, not whatever the shell points at
        PUBLIC_URL=$(local_public_url "$root") ||
            fail "no local stack is running for $root (start it with \`make run\`)"
        WV=("$WHEELVAULT" --root "$root")
        ok "the local stack of $root at $PUBLIC_URL"
        return
    fi
    [[ -z ${1:-} ]] || fail "unknown argument ${1}: run infra/smoke.sh, or infra/smoke.sh --local"
    if [[ -z ${PUBLIC_URL:-} || -z ${VAULT_URL:-} || -z ${STORAGE_BLOB_ENDPOINT:-} ]]; then from_azd; fi
    local name
    for name in PUBLIC_URL VAULT_URL STORAGE_BLOB_ENDPOINT; do
        [[ -n ${!name:-} ]] || fail "$name is not set (export it, or run in the azd environment; --local for \`make run\`)"
    done
    PUBLIC_URL=${PUBLIC_URL%/}
    WV=("$WHEELVAULT" --vault-url "$VAULT_URL" --public-url "$PUBLIC_URL" --storage-url "$STORAGE_BLOB_ENDPOINT")
    ok "$PUBLIC_URL, vault $VAULT_URL, storage $STORAGE_BLOB_ENDPOINT"
}

# -- the steps ----------------------------------------------------------------------------------

http_get() { # http_get PATH [TOKEN]: the status code; the body in $WORK/body. The token travels
    # in the environment, never on a command line another user could read.
    SMOKE_AUTH=${2:-} "$PY" -c '
import base64, os, sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1])
if os.environ["SMOKE_AUTH"]:
    pair = "smoke:" + os.environ["SMOKE_AUTH"]
    request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
try:
    with urllib.request.urlopen(request, timeout=60) as reply:
        status, body = reply.status, reply.read()
except urllib.error.HTTPError as error:
    status, body = error.code, error.read()
except OSError as error:  # refused, unknown host, TLS, timeout: one line, not a traceback
    sys.exit("GET " + sys.argv[1] + ": " + str(getattr(error, "reason", None) or error))
open(sys.argv[2], "wb").write(body)
print(status)
' "$PUBLIC_URL$1" "$WORK/body" 2>>"$LOG"
}

check_health() {
    begin health
    local status
    status=$(http_get /health) || fail "$PUBLIC_URL/health did not answer"
    cat "$WORK/body" >>"$LOG"
    [[ $status == 200 ]] || fail "$PUBLIC_URL/health answered $status: $(head -c 300 "$WORK/body")"
    local health
    health=$("$PY" -c '
import json, sys
health = json.load(open(sys.argv[1]))
print(", ".join(f"{key} {value}" for key, value in health.items()))
sys.exit(health.get("status") != "ok")
' "$WORK/body" 2>>"$LOG") || fail "$PUBLIC_URL/health is not ok: $(head -c 300 "$WORK/body")"
    status=$(http_get /simple/) || fail "$PUBLIC_URL/simple/ did not answer"
    [[ $status == 401 ]] || fail "an anonymous request for /simple/ got $status, not 401"
    ok "$health; an anonymous /simple/ refused 401"
}

create_token() {
    begin token
    TOKEN_CREATED=1 # before the call: a create that fails halfway still gets revoked
    TOKEN=$("${WV[@]}" token create "$TOKEN_NAME" --scope publish --rotate-after P1D \
        --overlap PT1H --description "infra/smoke.sh run $RUN_ID, revoked on exit" 2>>"$LOG") ||
        fail "wheelvault token create $TOKEN_NAME failed"
    [[ $TOKEN == wvt_* ]] || fail "wheelvault token create printed no token"
    ok "$TOKEN_NAME, publish scope"
}

build_wheel() {
    begin build
    mkdir -p "$WORK/dist"
    "$PY" -c '
import sys
from pathlib import Path
from devhost.wheels import build_sdist, build_wheel
wheel = build_wheel("wheelvault-smoke", sys.argv[1], summary="infra/smoke.sh: deleted when the run ends")
sdist = build_sdist("wheelvault-smoke", sys.argv[1])
for built in (wheel, sdist):
    Path(sys.argv[2], built.filename).write_bytes(built.data)
    print(built.filename)
' "$VERSION" "$WORK/dist" >>"$LOG" 2>&1 || fail "could not build the wheel"
    [[ -f "$WORK/dist/$WHEEL_NAME" ]] || fail "the wheel is not $WHEEL_NAME"
    [[ -f "$WORK/dist/$SDIST_NAME" ]] || fail "the sdist is not $SDIST_NAME"
    ok "$WHEEL_NAME, $SDIST_NAME"
}

upload_wheel() {
    begin upload
    : >"$WORK/pypirc" # twine reads no ~/.pypirc of yours
    UPLOADED+=("$WHEEL_NAME")
    TWINE_USERNAME=smoke TWINE_PASSWORD=$TOKEN TWINE_NON_INTERACTIVE=1 \
        "$PY" -m twine upload --config-file "$WORK/pypirc" --disable-progress-bar --verbose \
        --repository-url "$PUBLIC_URL/legacy/" "$WORK/dist/$WHEEL_NAME" >>"$LOG" 2>&1 ||
        fail "twine upload to $PUBLIC_URL/legacy/ failed"
    listed "$TOKEN" || fail "/simple/$PROJECT/ does not list $WHEEL_NAME after the upload"
    ok "twine to /legacy/, listed on /simple/$PROJECT/"
}

upload_blob() { # the other route: an upload SAS, the blob, then Event Grid and the blob trigger
    begin upload-blob
    UPLOADED+=("$SDIST_NAME")
    WHEELVAULT_TOKEN=$TOKEN "${WV[@]}" upload --wait --timeout 300 --quiet \
        "$WORK/dist/$SDIST_NAME" >>"$LOG" 2>&1 || fail "wheelvault upload --wait $SDIST_NAME failed"
    ok "wheelvault upload: an upload SAS, the blob trigger published $SDIST_NAME"
}

listed() { # listed TOKEN: the project page, read with TOKEN, links this run's wheel
    local status
    status=$(http_get "/simple/$PROJECT/" "$1") || return 1
    [[ $status == 200 ]] && grep -q "$WHEEL_NAME" "$WORK/body"
}

isolated() { # run a client with no package source of yours: no PIP_*/UV_* settings, no config
    # files, private caches
    (
        unset "${!PIP_@}" "${!UV_@}"
        export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
        export PIP_CACHE_DIR="$WORK/cache/pip" UV_CACHE_DIR="$WORK/cache/uv" UV_NO_CONFIG=1
        export UV_PYTHON_DOWNLOADS=never
        [[ -z ${SMOKE_INDEX:-} ]] || export PIP_INDEX_URL=$SMOKE_INDEX UV_DEFAULT_INDEX=$SMOKE_INDEX
        "$@"
    ) >>"$LOG" 2>&1
}

uv_command() {
    if [[ -x $CHECKOUT/.venv/bin/uv ]]; then echo "$CHECKOUT/.venv/bin/uv"; else command -v uv; fi
}

imports() { # imports VENV: the installed module is this run's version
    "$1/bin/python" -c 'import sys, wheelvault_smoke as m; sys.exit(m.__version__ != sys.argv[1])' \
        "$VERSION" >>"$LOG" 2>&1
}

install_with() { # install_with pip|uv: into a fresh virtual environment, through the index URL
    begin "install-$1"
    local uv venv="$WORK/venv-$1"
    uv=$(uv_command) || fail "uv is not installed (make installs it into .venv)"
    isolated "$uv" venv --no-config --python "$PY" "$venv" || fail "could not make a virtual environment"
    if [[ $1 == pip ]]; then
        SMOKE_INDEX=$INDEX_URL isolated "$PY" -m pip --python "$venv/bin/python" install \
            --no-cache-dir --only-binary :all: "$PROJECT==$VERSION" || fail "pip install $PROJECT==$VERSION failed"
    else
        SMOKE_INDEX=$INDEX_URL isolated "$uv" pip install --no-config --no-cache --only-binary :all: \
            --python "$venv/bin/python" "$PROJECT==$VERSION" || fail "uv pip install $PROJECT==$VERSION failed"
    fi
    imports "$venv" || fail "$MODULE does not import as version $VERSION"
    ok "$1 installed $PROJECT==$VERSION from the index URL and imported it"
}

index_url() {
    begin index-url
    INDEX_URL=$("${WV[@]}" token url "$TOKEN_NAME" 2>>"$LOG") || fail "wheelvault token url $TOKEN_NAME failed"
    [[ $INDEX_URL == *"$TOKEN"* ]] || fail "the index URL does not carry the token's value"
    ok "$(printf '%s' "$INDEX_URL" | mask)"
}

rotate_token() {
    begin rotate
    NEW_TOKEN=$("${WV[@]}" token rotate "$TOKEN_NAME" 2>>"$LOG") || fail "wheelvault token rotate $TOKEN_NAME failed"
    [[ $NEW_TOKEN == wvt_* && $NEW_TOKEN != "$TOKEN" ]] || fail "the rotation printed no new value"
    accepted "$NEW_TOKEN" || fail "the new value is not accepted after ${ROTATE_WAIT}s"
    listed "$TOKEN" || fail "the old value no longer works within its overlap"
    local url
    url=$("${WV[@]}" token url "$TOKEN_NAME" 2>>"$LOG") || fail "wheelvault token url $TOKEN_NAME failed"
    [[ $url == *"$NEW_TOKEN"* ]] || fail "the index URL still carries the old value"
    ok "the new value works, the old one within its overlap, the index URL follows"
}

accepted() { # accepted TOKEN: within ROTATE_WAIT (the front door caches a token's values)
    local deadline=$((SECONDS + ROTATE_WAIT))
    until listed "$1"; do
        ((SECONDS < deadline)) || return 1
        sleep 2
    done
}

# -- the run ------------------------------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wheelvault-smoke.XXXXXX")
resolve_inputs "$@"
check_health
create_token
build_wheel
upload_wheel
upload_blob
index_url
install_with pip
install_with uv
rotate_token
