#!/usr/bin/env bash
# Generates a CA and a serving certificate signed by it, with openssl.
#
#   scripts/gen-certs.sh OUT_DIR [SAN ...]
#
# SANs default to the in-cluster names of the webhook Service
# (kueuer-webhook.kueuer-system.svc and its short forms) plus 127.0.0.1 and
# localhost. Writes ca.crt, ca.key, tls.crt, tls.key; ca.crt base64-encoded is
# the caBundle of the MutatingWebhookConfiguration.
set -euo pipefail
usage="usage: scripts/gen-certs.sh OUT_DIR [SAN ...]   (a CA and a serving certificate; SANs default to the webhook Service's names)"
case "${1:-}" in
  -h | --help) echo "$usage"; exit 0 ;;
  -*) echo "gen-certs: unknown flag $1; $usage" >&2; exit 2 ;;
  "") echo "$usage" >&2; exit 2 ;;
esac
out="$1"
shift
sans=("$@")
if [ ${#sans[@]} -eq 0 ]; then
  sans=(kueuer-webhook kueuer-webhook.kueuer-system kueuer-webhook.kueuer-system.svc kueuer-webhook.kueuer-system.svc.cluster.local localhost 127.0.0.1)
fi
mkdir -p "$out"
alt=""
for s in "${sans[@]}"; do
  if [[ "$s" =~ ^[0-9.]+$ || "$s" == *:* ]]; then alt+="IP:$s,"; else alt+="DNS:$s,"; fi
done
alt="${alt%,}"
days="${KUEUER_CERT_DAYS:-365}"

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" -subj "/CN=kueuer-ca" \
  -keyout "$out/ca.key" -out "$out/ca.crt" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=${sans[0]}" \
  -keyout "$out/tls.key" -out "$out/tls.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$alt" > "$out/ext.cnf"
openssl x509 -req -in "$out/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -sha256 -days "$days" \
  -extfile "$out/ext.cnf" -out "$out/tls.crt" 2>/dev/null
rm -f "$out/tls.csr" "$out/ext.cnf" "$out/ca.srl"
chmod 600 "$out/ca.key" "$out/tls.key"
echo "$out"
