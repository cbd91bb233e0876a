#!/usr/bin/env bash
# `make run`: a development server on SQLite at 127.0.0.1:8200 (auto-initialised and
# unsealed) with its KMIP listener on 127.0.0.1:5696 (mutual TLS, dev certificates), a
# short scripted demo through the CLI, then the server keeps running until Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LISTEN="${KEYKEEPER_LISTEN:-127.0.0.1:8200}"
KMIP_LISTEN="${KEYKEEPER_KMIP_LISTEN:-127.0.0.1:5696}"
TOKEN="${KEYKEEPER_DEV_ROOT_TOKEN:-kk.dev-$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')}"
export KEYKEEPER_ADDR="http://${LISTEN}"
export KEYKEEPER_TOKEN="${TOKEN}"

# Is the address free? (Binding tells for any program, not only another keykeeper.)
port_free() {
  python3 - "$1" <<'PY'
import socket, sys
host, _, port = sys.argv[1].rpartition(":")
with socket.socket() as s:
    try:
        s.bind((host.strip("[]") or "127.0.0.1", int(port)))
    except (OSError, ValueError):
        sys.exit(1)
PY
}
if ! port_free "${LISTEN}"; then
  echo "error: ${LISTEN} is in use; stop what listens there or choose another address:" >&2
  echo "       KEYKEEPER_LISTEN=127.0.0.1:8250 make run" >&2
  exit 1
fi
if ! port_free "${KMIP_LISTEN}"; then
  echo "error: ${KMIP_LISTEN} (KMIP) is in use; stop what listens there or choose another:" >&2
  echo "       KEYKEEPER_KMIP_LISTEN=127.0.0.1:5697 make run" >&2
  exit 1
fi

if [ -n "${KEYKEEPER_DEV_DATA_DIR:-}" ]; then
  DATA_DIR="${KEYKEEPER_DEV_DATA_DIR}"; OWN_DIR=0
else
  DATA_DIR="$(mktemp -d -t keykeeper-dev-XXXXXX)"; OWN_DIR=1
fi

# KMIP always uses mutual TLS: a dev CA, server and client certificates for its listener
# (REST stays plain HTTP on loopback), and a namespace for the keys KMIP clients create.
PKI="${DATA_DIR}/pki"
keykeeper dev-certs --out "${PKI}" --client-name demo-kmip-client --force >/dev/null
KEYKEEPER_KMIP_LISTEN="${KMIP_LISTEN}" KEYKEEPER_KMIP_NAMESPACE=demo-kmip \
  KEYKEEPER_KMIP_TLS_CERT_FILE="${PKI}/server.pem" KEYKEEPER_KMIP_TLS_KEY_FILE="${PKI}/server-key.pem" \
  KEYKEEPER_KMIP_TLS_CLIENT_CA_FILE="${PKI}/ca.pem" \
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
    echo "error: the server did not start (see above); try another KEYKEEPER_LISTEN" \
      "or KEYKEEPER_KMIP_LISTEN" >&2
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
echo "== KMIP: the same key store over the OASIS Key Management Interoperability Protocol =="
printf '\n$ keykeeper dev-certs --out %q --client-name demo-kmip-client   (done at start)\n' "${PKI}"
echo "  KMIP listener: ${KMIP_LISTEN}, mutual TLS (these certificates); namespace demo-kmip"
step keykeeper namespace create demo-kmip --description "demo: keys of KMIP clients"
step keykeeper role create kmip-client --operations 'key.*,encrypt,decrypt' \
  --description "demo: a KMIP client, e.g. a database's TDE"
step keykeeper principal create demo-kmip-client --kind service --role kmip-client \
  --cert-subject "CN=demo-kmip-client"
step keykeeper grant create --principal demo-kmip-client --operations 'key.*,encrypt,decrypt' \
  --namespace demo-kmip
sleep 1.2  # a new grant applies on every node within one second
KMIP_CLIENT=(--server "${KMIP_LISTEN}" --ca "${PKI}/ca.pem" --cert "${PKI}/client.pem"
             --key "${PKI}/client-key.pem")
printf '\n$ (a KMIP client: Create an AES-256 key, Activate, Encrypt, Decrypt, Get Attributes)'
step keykeeper kmip conformance "${ROOT}/scripts/kmip-demo.xml" "${KMIP_CLIENT[@]}"
step keykeeper key show demo-kmip:demo-kmip-db1
printf '\n$ keykeeper encrypt demo-kmip:demo-kmip-db1 --plaintext "made over KMIP, used over REST"\n'
CT3=$(keykeeper encrypt demo-kmip:demo-kmip-db1 --plaintext "made over KMIP, used over REST")
echo "${CT3}"
printf '\n$ keykeeper decrypt demo-kmip:demo-kmip-db1 <ciphertext>\n'
keykeeper decrypt demo-kmip:demo-kmip-db1 "${CT3}"; echo
step keykeeper audit search --principal demo-kmip-client
VECTORS="$(cd "${ROOT}/.." && pwd)/shared/vectors/kmip/v2.1/XML/mandatory"
if [ -f "${VECTORS}/SKLC-M-1-21.xml" ]; then
  # The OASIS cases destroy keys, and a KMIP request cannot wait for approvals: take the key
  # operations out of dual control for the run, then restore the policy (docs/kmip-conformance.md).
  keykeeper policy approval show --format json > "${DATA_DIR}/approval-policy.json"
  python3 - "${DATA_DIR}/approval-policy.json" > "${DATA_DIR}/approval-policy-kmip.json" <<'PY'
import json, sys
rules = []
for rule in json.load(open(sys.argv[1]))["rules"]:
    ops = [op for op in rule["operations"] if not op.startswith("key.")]
    if ops:
        rules.append({**rule, "operations": ops})
print(json.dumps({"rules": rules}))
PY
  printf '\n$ keykeeper policy approval set <the policy without key.* operations>   (for this run)\n'
  keykeeper policy approval set "${DATA_DIR}/approval-policy-kmip.json" > /dev/null
  printf '\n$ (two OASIS KMIP 2.1 test cases: symmetric key lifecycle, basic cryptography)'
  step keykeeper kmip conformance "${VECTORS}/SKLC-M-1-21.xml" "${VECTORS}/CS-BC-M-1-21.xml" \
    "${KMIP_CLIENT[@]}" || true
  printf '\n$ keykeeper policy approval set <the saved policy>   (dual control on keys again)\n'
  keykeeper policy approval set "${DATA_DIR}/approval-policy.json" > /dev/null
else
  printf '\n(the OASIS KMIP test cases are not at %s: skipped; docs/kmip-conformance.md)\n' \
    "${VECTORS}"
fi
step keykeeper key list --namespace demo-kmip

echo
echo "== the audit trail: hash-chained, HMAC'd, checkpoints signed =="
step keykeeper audit search --principal demo-checkout
step keykeeper audit verify "${DATA_DIR}/audit.log"

if [ "${OWN_DIR}" = 1 ]; then KEPT="(removed when the server stops)"; else KEPT="(kept)"; fi
cat <<MSG

== demo finished; the server keeps running until Ctrl-C ==
  export KEYKEEPER_ADDR=${KEYKEEPER_ADDR}
  export KEYKEEPER_TOKEN=${TOKEN}
  KMIP: ${KMIP_LISTEN} (mutual TLS) with --ca ${PKI}/ca.pem
        --cert ${PKI}/client.pem --key ${PKI}/client-key.pem
  data directory: ${DATA_DIR} ${KEPT}
MSG
wait "${SERVER}"
