#!/usr/bin/env bash
# `make run`: a development server on SQLite at 127.0.0.1:8200 (auto-initialised and
# unsealed), a short scripted demo through the CLI, then the server keeps running
# until Ctrl-C.
set -euo pipefail

LISTEN="${KEYKEEPER_LISTEN:-127.0.0.1:8200}"
TOKEN="${KEYKEEPER_DEV_ROOT_TOKEN:-kk.dev-$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')}"
export KEYKEEPER_ADDR="http://${LISTEN}"
export KEYKEEPER_TOKEN="${TOKEN}"

# Is the address free? (Binding tells for any program, not only another keykeeper.)
if ! python3 - "${LISTEN}" <<'PY'
import socket, sys
host, _, port = sys.argv[1].rpartition(":")
with socket.socket() as s:
    try:
        s.bind((host or "127.0.0.1", int(port)))
    except OSError:
        sys.exit(1)
PY
then
  echo "error: ${LISTEN} is in use; stop what listens there or choose another address:" >&2
  echo "       KEYKEEPER_LISTEN=127.0.0.1:8250 make run" >&2
  exit 1
fi

if [ -n "${KEYKEEPER_DEV_DATA_DIR:-}" ]; then
  DATA_DIR="${KEYKEEPER_DEV_DATA_DIR}"; OWN_DIR=0
else
  DATA_DIR="$(mktemp -d -t keykeeper-dev-XXXXXX)"; OWN_DIR=1
fi

keykeeper server --dev --dev-root-token "${TOKEN}" --listen "${LISTEN}" --data-dir "${DATA_DIR}" &
SERVER=$!
cleanup() {
  kill "${SERVER}" 2>/dev/null || true
  wait "${SERVER}" 2>/dev/null || true
  # The dev data directory holds the unseal passphrase in plain text: remove it.
  if [ "${OWN_DIR}" = 1 ]; then rm -rf "${DATA_DIR}"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for _ in $(seq 1 100); do
  if keykeeper status >/dev/null 2>&1; then break; fi
  if ! kill -0 "${SERVER}" 2>/dev/null; then
    echo "error: the server did not start (see above); try another KEYKEEPER_LISTEN" >&2
    [ "${OWN_DIR}" = 1 ] && rm -rf "${DATA_DIR}"
    exit 1
  fi
  sleep 0.2
done

if [ -t 1 ]; then BOLD=$'\033[1m'; PLAIN=$'\033[0m'; else BOLD=""; PLAIN=""; fi
# Show each command as it could be pasted (quoted), then run it.
step() { printf '\n%s$' "${BOLD}"; printf ' %q' "$@"; printf '%s\n' "${PLAIN}"; "$@"; }
echo
echo "== keykeeper demo (through the CLI, as any client would) =="
step keykeeper status
step keykeeper key create demo-orders --purpose encrypt --description "demo: order data"
CT1=$(keykeeper encrypt demo-orders --plaintext "card ending 4242" --context tenant=acme)
printf '\n$ keykeeper encrypt demo-orders --plaintext "card ending 4242" --context tenant=acme\n%s\n' "${CT1}"
printf '\n$ keykeeper decrypt demo-orders <ciphertext> --context tenant=acme\n'
keykeeper decrypt demo-orders "${CT1}" --context tenant=acme; echo
step keykeeper key rotate demo-orders
CT2=$(keykeeper encrypt demo-orders --plaintext "new data under version 2")
printf '\n$ keykeeper encrypt demo-orders --plaintext "new data under version 2"\n%s\n' "${CT2}"
printf '\n$ keykeeper decrypt demo-orders <the version-1 ciphertext> --context tenant=acme\n'
keykeeper decrypt demo-orders "${CT1}" --context tenant=acme; echo
step keykeeper key create demo-signing --algorithm ECDSA_P256_SHA256
SIG=$(keykeeper sign demo-signing --message "release v1.0")
printf '\n$ keykeeper sign demo-signing --message "release v1.0"\n%s\n' "${SIG}"
step keykeeper verify demo-signing "${SIG}" --message "release v1.0"
printf '\n$ keykeeper verify demo-signing <signature> --message "tampered"   (expect: invalid)\n'
keykeeper verify demo-signing "${SIG}" --message "tampered" || true
step keykeeper key list

echo
echo "== access control: a namespace, an application principal scoped to it, a condition =="
step keykeeper namespace create demo-payments --description "demo: a segmentation boundary"
step keykeeper key create demo-payments:cards --purpose encrypt
step keykeeper principal create demo-checkout --role application --metadata tenant=acme
step keykeeper grant create --principal demo-checkout --operations encrypt,decrypt \
  --namespace demo-payments --key-pattern 'card*' \
  --condition 'context.tenant == principal.metadata.tenant'
APP_TOKEN=$(keykeeper token create demo-checkout --ttl 1h --format json \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
printf '\n$ keykeeper token create demo-checkout --ttl 1h   (the secret is shown once)\n'
sleep 1.2  # a new grant applies on every node within one second
printf '\n$ KEYKEEPER_TOKEN=<app token> keykeeper encrypt demo-payments:cards --plaintext 4242 --context tenant=acme\n'
KEYKEEPER_TOKEN="${APP_TOKEN}" keykeeper encrypt demo-payments:cards --plaintext 4242 \
  --context tenant=acme
printf '\n$ ... --context tenant=other   (expect: permission_denied, the condition does not hold)\n'
KEYKEEPER_TOKEN="${APP_TOKEN}" keykeeper encrypt demo-payments:cards --plaintext 4242 \
  --context tenant=other || true
printf '\n$ KEYKEEPER_TOKEN=<app token> keykeeper encrypt demo-orders ...   (expect: not_found, outside its grants)\n'
KEYKEEPER_TOKEN="${APP_TOKEN}" keykeeper encrypt demo-orders --plaintext x || true

echo
echo "== the lifecycle: usage limits, rotation by the scheduler, compromise response =="
step keykeeper key create demo-tiny --usage-limit 10 --rotation-period 30d
for i in $(seq 1 9); do keykeeper encrypt demo-tiny --plaintext "m$i" > /dev/null; done
printf '
$ (9 encryptions: the soft threshold, 90 %% of the limit, starts a rotation)
'
step keykeeper scheduler run rotation
step keykeeper key versions demo-tiny
step keykeeper key compromise-version demo-orders 1 --reason "demo: leaked in a log"
printf '
$ keykeeper decrypt demo-orders <the version-1 ciphertext>   (expect: refused without --allow-compromised)
'
keykeeper decrypt demo-orders "${CT1}" --context tenant=acme || true
step keykeeper key compromise-report demo-orders --version 1

echo
echo "== backups: encrypted for a quorum of custodians, verified offline =="
step keykeeper backup custodian-keygen --out "${DATA_DIR}/alice.key" --public-out "${DATA_DIR}/alice.pub"
step keykeeper backup custodian-keygen --out "${DATA_DIR}/bob.key" --public-out "${DATA_DIR}/bob.pub"
step keykeeper backup create --out "${DATA_DIR}/demo.backup" --custodian-key "${DATA_DIR}/alice.pub" \
  --custodian-key "${DATA_DIR}/bob.pub" --custodian-threshold 2
step keykeeper backup signing-key --out "${DATA_DIR}/signer.pem"
step keykeeper backup verify "${DATA_DIR}/demo.backup" --signer "${DATA_DIR}/signer.pem" \
  --custodian-key "${DATA_DIR}/alice.key" --custodian-key "${DATA_DIR}/bob.key"

echo
echo "== the audit trail: hash-chained, HMAC'd, checkpoints signed =="
step keykeeper audit search --principal demo-checkout
step keykeeper audit verify "${DATA_DIR}/audit.log"

cat <<MSG

== demo finished; the server keeps running until Ctrl-C ==
  export KEYKEEPER_ADDR=${KEYKEEPER_ADDR}
  export KEYKEEPER_TOKEN=${TOKEN}
  data directory: ${DATA_DIR} (removed when the server stops)
MSG
wait "${SERVER}"
