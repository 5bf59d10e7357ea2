#!/usr/bin/env bash
# Builds the Debian package, installs it with dpkg -i, checks what it installed, runs
# systemd-analyze verify on its units, then starts the installed binary once as its
# unit does (the unit's ExecStart, as the unit's user, with the unit's environment)
# against the local RabbitMQ and relays one webhook to a consumer; starts the
# dispatcher the same way. Purges the package at the end, also on failure.
# Needs root (dpkg), RabbitMQ on 127.0.0.1:5672 (guest/guest).
set -euo pipefail
cd "$(dirname "$0")/.."

deb=$(packaging/build-deb.sh | tail -n 1)
prefix="pkgtest_$$_"
work=$(mktemp -d)
chmod 0755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    dpkg --purge powens-webhooks >/dev/null 2>&1 || true
    for exchange in callbacks openid_ciba_callbacks powens_domain_webhooks; do
        rabbitmqctl -q eval "rabbit_exchange:delete(rabbit_misc:r(<<\"/\">>, exchange, <<\"${prefix}${exchange}\">>), false, <<\"pkgtest\">>)." >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "packaging test: $*" >&2; exit 1; }

dpkg -i "$deb"
test -x /usr/bin/powens-relay || fail "no /usr/bin/powens-relay"
getent passwd powens-relay >/dev/null || fail "no system user powens-relay"
[ "$(stat -c '%a %U %G' /etc/powens-relay/environment)" = "640 root powens-relay" ] \
    || fail "/etc/powens-relay/environment is not 0640 root:powens-relay"
units=(/lib/systemd/system/powens-relay.service /lib/systemd/system/powens-dispatch.service)
systemd-analyze verify "${units[@]}" || fail "systemd-analyze verify refused a unit"
for unit in "${units[@]}"; do
    for option in NoNewPrivileges=yes ProtectSystem=strict User=powens-relay; do
        grep -qx "$option" "$unit" || fail "$unit lacks $option"
    done
done

# The unit's command, user and environment; the test's broker, domain and state dir.
install -d -o powens-relay -g powens-relay -m 0750 "$work/state"
unit_command() { sed -n 's/^ExecStart=//p' "$1"; }
secret=pkgtest-secret
run_as_unit() {
    local unit=$1 log=$2
    # shellcheck disable=SC2046
    # setpriv execs (runuser would stay as the parent and eat the exit status).
    setpriv --reuid=powens-relay --regid=powens-relay --init-groups -- env \
        $(sed -n 's/^Environment=//p' "$unit") \
        POWENS_RELAY_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f \
        POWENS_RELAY_EXCHANGE_PREFIX="$prefix" \
        POWENS_RELAY_LISTEN=127.0.0.1:0 \
        POWENS_RELAY_DISPATCHER_LISTEN=127.0.0.1:0 \
        POWENS_RELAY_DATA_DIR="$work/state" \
        POWENS_RELAY_DOMAINS="pkgtest.biapi.pro=env:PKGTEST_SECRET" \
        PKGTEST_SECRET="$secret" \
        POWENS_RELAY_DISPATCHER_PASSWORD=pkgtest-password \
        $(unit_command "$unit") 2>"$log" &
    pids+=($!)
}
address_in() {
    for _ in $(seq 100); do
        addr=$(grep -so 'listening on [0-9.:]*' "$1" | head -n 1 | cut -d' ' -f3 || true)
        [ -n "$addr" ] && { echo "$addr"; return; }
        sleep 0.1
    done
    cat "$1" >&2
    fail "no 'listening on' in $1"
}

run_as_unit /lib/systemd/system/powens-relay.service "$work/serve.log"
relay=$(address_in "$work/serve.log")
serve_pid=${pids[-1]}

POWENS_RELAY_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f \
    /usr/bin/powens-relay consume --domain pkgtest.biapi.pro --exchange-prefix "$prefix" \
    --count 1 >"$work/consumed" 2>"$work/consume.log" &
consumer=$!
pids+=("$consumer")
status=
for _ in $(seq 100); do
    status=$(printf '{"id_webhook_data": 7}' | POWENS_WEBHOOK_SECRET=$secret \
        /usr/bin/powens-relay send "http://$relay/powens-webhook/pkgtest.biapi.pro/USER_SYNCED" \
        | head -n 1 || true)
    [ "$status" = 204 ] && break
    sleep 0.1
done
[ "$status" = 204 ] || fail "the installed relay answered $status"
wait "$consumer" || fail "the consumer failed: $(cat "$work/consume.log")"
grep -q '"domain":"pkgtest.biapi.pro"' "$work/consumed" || fail "the webhook was not consumed"
kill -TERM "$serve_pid"
wait "$serve_pid" || fail "serve did not exit 0 on SIGTERM"

run_as_unit /lib/systemd/system/powens-dispatch.service "$work/dispatch.log"
address_in "$work/dispatch.log" >/dev/null
dispatch_pid=${pids[-1]}
kill -TERM "$dispatch_pid"
wait "$dispatch_pid" || fail "dispatch did not exit 0 on SIGTERM"

echo "packaging test: $deb installed, units verified, one webhook relayed by the installed service"
