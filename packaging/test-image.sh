#!/usr/bin/env bash
# Builds the container image (packaging/build-image.sh) and checks it: its configuration
# (unprivileged user, entrypoint, labels, volume); its layers (no shell, no compiler,
# none of this test's secrets); then runs `serve` and `dispatch` from it with podman
# against the local RabbitMQ (host network), hardened as docs/operations.md advises,
# configured by environment variables and a mounted file, secrets as a mounted file and
# as variables. One webhook goes through serve to a consumer (run from the image), another
# to a websocket client of dispatch. Checks the processes' user, that a named volume
# holds data_dir, and that SIGTERM stops both within podman's grace time, exit 0.
# Removes its containers, volume, image and exchanges at the end, also on failure.
# Needs root, podman and runc, python3 with yaml, curl, openssl, RabbitMQ on
# 127.0.0.1:5672 (guest/guest) and Redis on 127.0.0.1:6379.
set -euo pipefail
cd "$(dirname "$0")/.."

run_id="$$_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
prefix="img${run_id}_"
image="localhost/powens-relay:test-$run_id"
serve="imgtest-serve-$run_id"
dispatch="imgtest-dispatch-$run_id"
consume="imgtest-consume-$run_id"
oneshot="imgtest-oneshot-$run_id"
tls="imgtest-tls-$run_id"
compose_serve="imgtest-compose-serve-$run_id"
compose_dispatch="imgtest-compose-dispatch-$run_id"
containers=("$serve" "$dispatch" "$consume" "$oneshot" "$tls" "$compose_serve" "$compose_dispatch")
volume="imgtest-data-$run_id"
# The TLS relay and the compose pair run while serve still holds its journal: each gets
# a data_dir of its own (one journal writer per data_dir).
tls_volume="imgtest-data-tls-$run_id"
compose_volume="imgtest-data-compose-$run_id"
volumes=("$volume" "$tls_volume" "$compose_volume")
uid=10001
grace=10 # podman stop's: SIGTERM, then SIGKILL after this many seconds
work=$(mktemp -d)
started=$SECONDS

log() { echo "image test: $*" >&2; }
fail() {
    echo "image test FAILED: $*" >&2
    for container in "${containers[@]}"; do
        if podman container exists "$container" 2>/dev/null; then
            echo "--- last lines of $container's log" >&2
            podman logs --tail 20 "$container" >&2 2>&1 || true
        fi
    done
    exit 1
}
cleanup() {
    status=$?
    local pid
    for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
    podman rm --force --volumes --time 0 "${containers[@]}" >/dev/null 2>&1 || true
    podman volume rm --force "${volumes[@]}" >/dev/null 2>&1 || true
    podman rmi --force "$image" >/dev/null 2>&1 || true
    # The exchanges this run's prefix declared, in one call (rabbitmqctl takes a second).
    timeout 30 rabbitmqctl -q eval "[rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"$prefix\", N/binary>>), false, <<\"imgtest\">>) || N <- [<<\"callbacks\">>, <<\"openid_ciba_callbacks\">>, <<\"powens_domain_webhooks\">>]]." >/dev/null 2>&1 || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in podman runc python3 curl openssl; do
    command -v "$tool" >/dev/null || fail "$tool is not installed"
done
python3 -c 'import yaml' 2>/dev/null || fail "python3 has no yaml module (python3-yaml)"
(exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null || fail "no RabbitMQ on 127.0.0.1:5672"

# This run's secrets: random, so that finding one in the image means it was copied there.
random() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
secret_a="imgtest-a-$(random)"
secret_b="imgtest-b-$(random)"
secret_sandbox="imgtest-sandbox-$(random)"
password="imgtest-pw-$(random)"
secrets=("$secret_a" "$secret_b" "$secret_sandbox" "$password")

# The build runs with the secrets in its environment, as a careless CI job would: none
# may reach a layer.
log "building $image"
image=$(POWENS_SECRET_IMGTEST_A=$secret_a POWENS_SECRET_IMGTEST_B=$secret_b \
    POWENS_SECRET_SANDBOX=$secret_sandbox POWENS_RELAY_DISPATCHER_PASSWORD=$password \
    packaging/build-image.sh "$image" | tail -n 1)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
size=$(podman image inspect --format '{{.Size}}' "$image")
log "image size $((size / 1024)) KiB"

# --- the image's configuration
inspect() { podman image inspect --format "$1" "$image"; }
[ "$(inspect '{{.Config.User}}')" = "$uid:$uid" ] || fail "the image's user is not $uid:$uid"
[ "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/bin/powens-relay"]' ] || fail "entrypoint"
[ "$(inspect '{{json .Config.Cmd}}')" = '["serve"]' ] || fail "default command"
[ "$(inspect '{{index .Config.Labels "org.opencontainers.image.version"}}')" = "$version" ] \
    || fail "the version label is not $version"
[ "$(inspect '{{index .Config.Labels "org.opencontainers.image.licenses"}}')" = "MIT OR Apache-2.0" ] \
    || fail "the licences label"
inspect '{{json .Config.Volumes}}' | grep -q '"/var/lib/powens-relay"' || fail "no volume for data_dir"
inspect '{{json .Config.Env}}' | grep -q '"POWENS_RELAY_LISTEN=0.0.0.0:8080"' || fail "listen default"

# --- its layers: every file, and the secrets nowhere
log "checking the image's layers"
podman save --quiet --format docker-archive --output "$work/image.tar" "$image"
mkdir "$work/archive" "$work/rootfs"
tar -xf "$work/image.tar" -C "$work/archive"
layers=$(python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin)[0]["Layers"]))' \
    < "$work/archive/manifest.json")
for layer in $layers; do
    tar -xf "$work/archive/$layer" -C "$work/rootfs"
done
files=$(cd "$work/rootfs" && find . -mindepth 1 ! -type d | sed 's/^\.//' | sort)
[ -x "$work/rootfs/usr/bin/powens-relay" ] || fail "no /usr/bin/powens-relay in the image"
[ -s "$work/rootfs/etc/ssl/certs/ca-certificates.crt" ] || fail "no CA certificates in the image"
grep -q "^powens-relay:x:$uid:$uid:" "$work/rootfs/etc/passwd" || fail "no user $uid in /etc/passwd"
# Every file: the relay, its libraries and their loader, /etc's four, the licences.
others=$(echo "$files" | grep -vx -e /usr/bin/powens-relay -e '/lib[^ ]*/[^/ ]*\.so[.0-9]*' \
    -e '/etc/\(passwd\|group\|nsswitch.conf\|ssl/certs/ca-certificates.crt\)' \
    -e '/usr/share/doc/[^/ ]*/\(copyright\|LICENSE-[A-Z]*\)' || true)
[ -z "$others" ] || fail "unexpected files in the image: $others"
shells=$(echo "$files" | grep -E '/(sh|bash|dash|ash|zsh|ksh|busybox|cc|gcc|g\+\+|clang|tcc|ld|as|rustc|cargo|python3?|perl)$' || true)
[ -z "$shells" ] || fail "a shell or compiler in the image: $shells"
for secret in "${secrets[@]}"; do
    if grep -rqaF -- "$secret" "$work/archive" "$work/rootfs"; then
        fail "a secret of this test is in the image"
    fi
done
rm -rf "$work/archive" "$work/rootfs" "$work/image.tar"
log "layers: $(echo "$files" | wc -l) files, no shell, no compiler, no secret"

# --- running it
# Podman's default limits for a root container (1048576 open files and processes) are
# above the hard limits of this CI's sandbox, where root has no CAP_SYS_RESOURCE to
# raise them: runc fails with "error setting rlimit type 7" (6 for nproc). Ask for this
# shell's open files limit, and 4096 processes (conmon's hard limit is 32768 here; the
# relay runs tens of threads).
nofile=$(ulimit -Hn)
limits=(--ulimit nproc=4096:4096)
[ "$nofile" = unlimited ] || limits+=(--ulimit "nofile=$nofile:$nofile")
# runc: crun, Debian's other runtime, fails on hybrid cgroup hierarchies. Host network:
# RabbitMQ listens on 127.0.0.1 only.
podman_base=(podman --runtime runc run --network host "${limits[@]}"
    --read-only --cap-drop all --security-opt no-new-privileges)
podman_run=("${podman_base[@]}" --volume "$volume:/var/lib/powens-relay")

# Configuration: the file (domains, and where the secrets are) mounted read-only, the
# broker, the listen addresses and the exchange prefix from the environment. The first
# domain's secret is a mounted file, the second's and the password are variables.
install -d -m 0700 -o "$uid" -g "$uid" "$work/secrets"
printf '%s\n' "$secret_a" > "$work/secrets/imgtest-a"
chown "$uid:$uid" "$work/secrets/imgtest-a"
chmod 0400 "$work/secrets/imgtest-a"
cat > "$work/relay.toml" <<TOML
[domains."imgtest-a.biapi.pro"]
secrets = ["file:/run/secrets/imgtest-a"]

[domains."imgtest-b.biapi.pro"]
secrets = ["env:POWENS_SECRET_IMGTEST_B"]
TOML
chmod 0644 "$work/relay.toml"
export POWENS_RELAY_AMQP_URL="amqp://guest:guest@localhost:5672/%2f" # by name: /etc/hosts
export POWENS_RELAY_EXCHANGE_PREFIX="$prefix"
export POWENS_SECRET_IMGTEST_B="$secret_b"
export POWENS_RELAY_DISPATCHER_PASSWORD="$password"
# `--env NAME` hands the container this shell's value: no secret on a command line.
environment=(--env POWENS_RELAY_AMQP_URL --env POWENS_RELAY_EXCHANGE_PREFIX
    --env POWENS_SECRET_IMGTEST_B --env POWENS_RELAY_DISPATCHER_PASSWORD
    --env POWENS_RELAY_LISTEN=127.0.0.1:0 --env POWENS_RELAY_DISPATCHER_LISTEN=127.0.0.1:0
    --volume "$work/relay.toml:/etc/powens-relay/relay.toml:ro"
    --volume "$work/secrets/imgtest-a:/run/secrets/imgtest-a:ro"
    --env POWENS_RELAY_CONFIG=/etc/powens-relay/relay.toml)

podman volume create "$volume" >/dev/null

listening_address() {
    local container=$1 address=
    for _ in $(seq 100); do
        address=$(podman logs "$container" 2>&1 | grep -o 'listening on [0-9.:]*' | head -n 1 | cut -d' ' -f3 || true)
        [ -n "$address" ] && { echo "$address"; return; }
        [ "$(podman inspect --format '{{.State.Running}}' "$container")" = true ] \
            || fail "$container exited before listening"
        sleep 0.2
    done
    fail "$container logged no 'listening on' within 20 s"
}
wait_ready() {
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 "http://$1/readyz" || true)" = 200 ] && return
        sleep 0.2
    done
    fail "http://$1/readyz did not answer 200 within 30 s"
}
# The container's process, seen from the host: there is no shell inside to ask.
check_process() {
    local container=$1 pid status
    pid=$(podman inspect --format '{{.State.Pid}}' "$container")
    status=$(cat "/proc/$pid/status")
    grep -qE "^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$" <<<"$status" || fail "$container does not run as uid $uid"
    grep -qE "^Gid:\s+$uid\s+$uid\s+$uid\s+$uid$" <<<"$status" || fail "$container does not run as gid $uid"
    grep -qE '^CapEff:\s+0+$' <<<"$status" || fail "$container has capabilities"
    grep -qE '^NoNewPrivs:\s+1$' <<<"$status" || fail "$container may gain privileges"
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q '^/usr/bin/powens-relay ' || fail "$container runs something else"
}
send() { # domain secret: sends until 204 (503 while no queue is bound yet), at most 20 s
    local status=
    for _ in $(seq 100); do
        status=$(printf '{"id_webhook_data": 7}' | POWENS_WEBHOOK_SECRET=$2 \
            target/release/powens-relay send "http://$relay/powens-webhook/$1/USER_SYNCED" \
            | head -n 1 || true)
        [ "$status" = 204 ] && return
        sleep 0.2
    done
    fail "serve answered $status to a webhook for $1"
}
stop_within_grace() {
    local container=$1 begin elapsed code
    begin=$(date +%s%N)
    podman stop --time "$grace" "$container" >/dev/null
    elapsed=$(( ($(date +%s%N) - begin) / 1000000 ))
    code=$(podman inspect --format '{{.State.ExitCode}}' "$container")
    [ "$code" = 0 ] || fail "$container exited $code on SIGTERM (137: killed after $grace s)"
    [ "$elapsed" -lt $((grace * 1000)) ] || fail "$container took $elapsed ms to stop"
    log "$container stopped by SIGTERM in $elapsed ms, exit 0"
}

log "serve: starting"
"${podman_run[@]}" --detach --name "$serve" "${environment[@]}" "$image" >/dev/null
relay=$(listening_address "$serve")
wait_ready "$relay"
check_process "$serve"
log "serve: ready on $relay, uid $uid, no capabilities"

log "one webhook to a consumer run from the image"
timeout 60 "${podman_run[@]}" --rm --name "$consume" --env POWENS_RELAY_AMQP_URL \
    "$image" consume --domain imgtest-a.biapi.pro --exchange-prefix "$prefix" --count 1 \
    > "$work/consumed" 2> "$work/consume.log" &
consumer=$!
send imgtest-a.biapi.pro "$secret_a"
wait "$consumer" || fail "the consumer failed: $(cat "$work/consume.log")"
grep -q '"domain":"imgtest-a.biapi.pro"' "$work/consumed" || fail "the consumer got no webhook"

log "dispatch: starting"
"${podman_run[@]}" --detach --name "$dispatch" "${environment[@]}" "$image" dispatch >/dev/null
dispatcher=$(listening_address "$dispatch")
wait_ready "$dispatcher"
check_process "$dispatch"
log "dispatch: ready on $dispatcher"

log "one webhook to a websocket client of dispatch"
# A websocket client in the standard library: RFC 6455's handshake and frames, enough
# to register to a domain and read one pushed text frame.
cat > "$work/ws_client.py" <<'PY'
import base64, json, os, socket, struct, sys

host, port = sys.argv[1].rsplit(":", 1)
domain = sys.argv[2]
sock = socket.create_connection((host, int(port)), timeout=30)
credentials = base64.b64encode(b"anonymous:" + os.environ["WS_PASSWORD"].encode()).decode()
key = base64.b64encode(os.urandom(16)).decode()
sock.sendall((f"GET /websocket HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
              f"Sec-WebSocket-Version: 13\r\nAuthorization: Basic {credentials}\r\n\r\n").encode())
stream = sock.makefile("rb")
status = stream.readline().decode().strip()
if " 101 " not in status + " ":
    sys.exit(f"websocket handshake refused: {status}")
while stream.readline() not in (b"\r\n", b""):
    pass

def send(opcode, payload):
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    head += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
    sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

def read_exact(n):
    data = stream.read(n)
    if len(data) != n:
        sys.exit("the dispatcher closed the connection")
    return data

send(1, json.dumps({"register_to": {"type": "powens_domain", "powens_domain": domain}}).encode())
print("registered", flush=True)
while True:
    first, second = read_exact(2)
    n = second & 0x7F
    if n == 126:
        n = struct.unpack("!H", read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(8))[0]
    payload = read_exact(n)
    opcode = first & 0x0F
    if opcode == 9:
        send(10, payload)
    elif opcode == 8:
        sys.exit(f"closed by the dispatcher: {payload[:2].hex()}")
    elif opcode == 1:
        print(payload.decode(), flush=True)
        break
PY
WS_PASSWORD=$password timeout 60 python3 "$work/ws_client.py" "$dispatcher" imgtest-b \
    > "$work/frames" 2> "$work/ws.log" &
client=$!
# The dispatcher binds the domain when the client registers (TeaL sends no
# acknowledgement): until then the webhook is unroutable and send retries it.
send imgtest-b.biapi.pro "$secret_b"
wait "$client" || fail "the websocket client failed: $(cat "$work/ws.log")"
grep '"type":"powens_webhook"' "$work/frames" | grep -q '"domain":"imgtest-b.biapi.pro"' \
    || fail "the websocket client got no webhook: $(cat "$work/frames")"

log "amqps://: serve through a TLS proxy, trusting a test CA mounted at the image's bundle path"
mkdir "$work/tls"
(
    cd "$work/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=imgtest-ca -keyout ca.key -out ca.crt \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -keyout server.key -out server.csr
    printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
    openssl x509 -req -days 1 -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
        -extfile server.ext -out server.crt
    chmod 0644 ca.crt
) >/dev/null 2>&1 || fail "openssl could not make the test CA"
cat > "$work/tls_proxy.py" <<'PY'
import asyncio, ssl, sys

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(sys.argv[1], sys.argv[2])

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()

async def handle(reader, writer):
    upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", 5672)
    await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
PY
timeout 120 python3 "$work/tls_proxy.py" "$work/tls/server.crt" "$work/tls/server.key" \
    > "$work/tls_port" 2> "$work/tls_proxy.log" &
for _ in $(seq 50); do [ -s "$work/tls_port" ] && break; sleep 0.1; done
tls_port=$(head -n 1 "$work/tls_port")
[ -n "$tls_port" ] || fail "the TLS proxy did not start: $(cat "$work/tls_proxy.log")"
POWENS_RELAY_AMQP_URL="amqps://guest:guest@localhost:$tls_port/%2f" \
    "${podman_base[@]}" --volume "$tls_volume:/var/lib/powens-relay" \
    --detach --name "$tls" "${environment[@]}" \
    --volume "$work/tls/ca.crt:/etc/ssl/certs/ca-certificates.crt:ro" "$image" >/dev/null
address=$(listening_address "$tls")
wait_ready "$address"
stop_within_grace "$tls"

log "packaging/compose: its relay.toml read by serve and dispatch, its hosts resolved"
# The compose file is not started here (it pulls public images): its YAML is read, and
# its relay services checked to run this image with data_dir on a named volume.
python3 - packaging/compose/compose.yaml "localhost/powens-relay:$version" <<'PY' \
    || fail "packaging/compose/compose.yaml does not run this image as expected"
import sys, yaml
compose = yaml.safe_load(open(sys.argv[1]))
services = compose["services"]
assert sorted(services) == ["dispatch", "rabbitmq", "redis", "relay"], sorted(services)
for name, command in (("relay", ["serve"]), ("dispatch", ["dispatch"])):
    service = services[name]
    assert service["image"] == "${POWENS_RELAY_IMAGE:-%s}" % sys.argv[2], service["image"]
    assert service["command"] == command, service["command"]
    volume = [v for v in service["volumes"] if v.endswith(":/var/lib/powens-relay")]
    assert volume and volume[0].split(":")[0] in compose["volumes"], service["volumes"]
    assert "user" not in service and service["read_only"] is True
PY
install -d -m 0700 -o "$uid" -g "$uid" "$work/compose-secrets"
printf '%s' "$secret_sandbox" > "$work/compose-secrets/powens_secret_sandbox"
printf '%s' "$password" > "$work/compose-secrets/dispatcher_password"
chown "$uid:$uid" "$work/compose-secrets"/*
chmod 0400 "$work/compose-secrets"/*
# As in compose.yaml, but on the host's network: its service names are this host.
compose_environment=(--env POWENS_RELAY_AMQP_URL --env POWENS_RELAY_EXCHANGE_PREFIX
    --env POWENS_RELAY_LISTEN=127.0.0.1:0 --env POWENS_RELAY_DISPATCHER_LISTEN=127.0.0.1:0
    --env POWENS_RELAY_CONFIG=/etc/powens-relay/relay.toml
    --volume "$PWD/packaging/compose/relay.toml:/etc/powens-relay/relay.toml:ro"
    --volume "$work/compose-secrets:/run/secrets:ro"
    --add-host rabbitmq:127.0.0.1 --add-host redis:127.0.0.1)
for container in "$compose_serve" "$compose_dispatch"; do
    command=serve
    [ "$container" = "$compose_dispatch" ] && command=dispatch
    POWENS_RELAY_AMQP_URL="amqp://guest:guest@rabbitmq:5672/%2f" \
        "${podman_base[@]}" --volume "$compose_volume:/var/lib/powens-relay" \
        --detach --name "$container" "${compose_environment[@]}" \
        "$image" "$command" >/dev/null
done
for container in "$compose_serve" "$compose_dispatch"; do
    address=$(listening_address "$container")
    wait_ready "$address"
    stop_within_grace "$container"
done

log "data_dir on the volume, written by the image's user"
"${podman_run[@]}" --rm --name "$oneshot" "${environment[@]}" "$image" \
    callback create --state "imgtest-$run_id" --expires-in 600 >/dev/null
mountpoint=$(podman volume inspect --format '{{.Mountpoint}}' "$volume")
[ "$(stat -c %u "$mountpoint/callbacks.sqlite3")" = "$uid" ] \
    || fail "no callback store written by uid $uid on the volume"

stop_within_grace "$dispatch"
stop_within_grace "$serve"

for container in "$serve" "$dispatch" "$tls" "$compose_serve" "$compose_dispatch"; do
    podman logs "$container" > "$work/$container.log" 2>&1
    for secret in "${secrets[@]}"; do
        grep -qF -- "$secret" "$work/$container.log" && fail "a secret is in $container's log"
    done
done

log "passed in $((SECONDS - started)) s: $image ($((size / 1024)) KiB) relayed a webhook to a consumer and one to a websocket client, as uid $uid"
