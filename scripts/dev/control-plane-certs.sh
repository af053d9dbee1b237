#!/usr/bin/env bash
# Certificates for a test control plane (as envtest makes them), with openssl:
#   ca.crt/ca.key       the cluster CA (also the client CA)
#   apiserver.crt/.key  serving certificate for 127.0.0.1, localhost and kubernetes.default
#   admin.crt/.key      client certificate, CN=admin, O=system:masters
#   sa.key/sa.pub       service-account signing key pair
#   front-proxy-ca.crt, front-proxy-client.crt/.key  the aggregation layer's requestheader CA and proxy client
#
#   scripts/dev/control-plane-certs.sh OUT_DIR
set -euo pipefail
out="${1:?usage: control-plane-certs.sh OUT_DIR}"
mkdir -p "$out"
cd "$out"
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=kueuer-test-cluster-ca" -keyout ca.key -out ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

sign() { # name subject extensions
  openssl req -newkey rsa:2048 -nodes -sha256 -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
  printf '%b' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days 2 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
sign apiserver "/CN=kube-apiserver" \
  "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
sign admin "/O=system:masters/CN=admin" "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
# The aggregation layer: a separate front-proxy CA, and the client cert the apiserver presents to aggregated APIs.
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=kueuer-test-front-proxy-ca" -keyout front-proxy-ca.key -out front-proxy-ca.crt \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=front-proxy-client" -keyout front-proxy-client.key -out front-proxy-client.csr 2>/dev/null
printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > front-proxy-client.ext
openssl x509 -req -in front-proxy-client.csr -CA front-proxy-ca.crt -CAkey front-proxy-ca.key -CAcreateserial -sha256 -days 2 -extfile front-proxy-client.ext -out front-proxy-client.crt 2>/dev/null
rm -f front-proxy-client.csr front-proxy-client.ext front-proxy-ca.srl
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
rm -f ca.srl
echo "$out"
