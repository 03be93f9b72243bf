#!/bin/sh
# The systemd rehearsal: deploy/miniship.service run by systemd as PID 1 in a podman
# container (rootful podman; docs/deploy.md → "What was run"). From anywhere:
#
#     sh deploy/systemd-rehearsal/run.sh            # build the image, then check
#     sh deploy/systemd-rehearsal/run.sh --no-build # check with the image already built
#     KEEP=1 sh deploy/systemd-rehearsal/run.sh     # leave the container running after
#
# The image holds the repository's last commit (git archive HEAD) with the working tree's
# deploy/ on top; and each run copies the working tree's unit into the container before
# starting it, so the unit being changed is the unit checked (--no-build too). Behind a proxy with its
# own CA, PIP_CERT=/path/ca.pem (the CA is mounted for the build only). Each check prints
# "ok: …"; the first that fails prints "FAILED: …" and the script exits 1.
set -eu
IMAGE=${IMAGE:-localhost/miniship-systemd:rehearsal}
NAME=${NAME:-miniship-systemd-rehearsal}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

fail() { echo "FAILED: $*"; exit 1; }
ok() { echo "ok: $*"; }
in_box() { podman exec "$NAME" "$@"; }

if [ "${1:-}" != "--no-build" ]; then
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    git -C "$REPO" archive HEAD | tar -x -C "$ctx"
    cp -R "$REPO/deploy/." "$ctx/deploy/"
    set -- -f deploy/systemd-rehearsal/Containerfile -t "$IMAGE"
    if [ -n "${PIP_CERT:-}" ]; then
        set -- "$@" -v "$PIP_CERT:/ca.pem:ro" --build-arg PIP_CERT=/ca.pem
    fi
    (cd "$ctx" && podman build "$@" .)
fi

podman rm -f "$NAME" >/dev/null 2>&1 || true
# systemd as PID 1. CAP_SYS_ADMIN: the unit's sandboxing (ProtectSystem=, PrivateTmp=, …)
# makes mount namespaces, which podman's default capabilities forbid (status 226/NAMESPACE);
# a real machine's systemd has it.
podman run -d --systemd=always --cap-add SYS_ADMIN --name "$NAME" "$IMAGE" >/dev/null
[ -n "${KEEP:-}" ] || trap 'podman rm -f "$NAME" >/dev/null 2>&1 || true; rm -rf "${ctx:-/nonexistent}"' EXIT
state=$(in_box systemctl is-system-running --wait || true)
[ "$(in_box cat /proc/1/comm)" = systemd ] || fail "PID 1 is not systemd"
ok "systemd is PID 1 ($(in_box systemctl --version | head -1)), system state: ${state:-not said}"

# the working tree's unit (and probe), whatever the image was built with
podman cp "$REPO/deploy/miniship.service" "$NAME:/etc/systemd/system/miniship.service"
podman cp "$HERE/probe.sh" "$NAME:/usr/local/bin/miniship-probe"
in_box systemctl daemon-reload
# docs/deploy.md → systemd, its last step
in_box systemctl enable --now miniship \
    || fail "systemctl enable --now miniship: $(in_box journalctl -u miniship -o cat --no-pager | tail -4)"
[ "$(in_box systemctl is-active miniship)" = active ] || fail "miniship is not active"
pre=$(in_box systemctl show miniship -p ExecStartPre --value)
case $pre in *"miniship migrate"*"status=0"*) ok "ExecStartPre miniship migrate exited 0" ;;
    *) fail "ExecStartPre: $pre" ;; esac
pid=$(in_box systemctl show miniship -p MainPID --value)
ok "systemctl enable --now miniship: active, main PID $pid"

probe() { in_box curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:3000/$1" || true; }
i=0
until [ "$(probe healthz)" = 200 ]; do
    i=$((i + 1)); [ $i -lt 60 ] || fail "/healthz never answered"; sleep 0.5
done
ok "/healthz 200"
ready=$(in_box curl -s http://127.0.0.1:3000/readyz)
echo "$ready" | grep -q '"database": "ok"' || fail "/readyz: $ready"
echo "$ready" | grep -Eq '"migrations": "([0-9]+) \(newest \1\)"' || fail "/readyz: $ready"
ok "/readyz $(probe readyz): database ok, schema newest (Slack is not reachable here): $ready"
[ "$(probe metrics)" = 200 ] || fail "/metrics"
ok "/metrics 200"

in_box systemctl status miniship --no-pager -n 0 || true
logs=$(in_box journalctl -u miniship -o cat --no-pager _PID="$pid")
echo "$logs" | grep -q '^{.*"message": "listening for Slack on port 3000' \
    || fail "journalctl -u miniship: no JSON line saying it listens: $logs"
in_box sh -c "journalctl -u miniship -o cat --no-pager _PID=$pid | python3 -c 'import json, sys; [json.loads(l) for l in sys.stdin]'" \
    || fail "a log line of miniship is not JSON"
ok "journalctl -u miniship: $(echo "$logs" | wc -l) lines of miniship's, each JSON"

# the sandbox: a copy of the unit (same dynamic user, same settings) whose ExecStart is probe.sh
in_box sh -c "sed -e '/^ExecStartPre=/d' -e 's|^ExecStart=.*|ExecStart=/usr/local/bin/miniship-probe|' \
    -e 's/^Type=exec/Type=oneshot/' -e '/^Restart/d' -e 's/^DynamicUser=yes/DynamicUser=yes\nUser=miniship/' \
    /etc/systemd/system/miniship.service > /etc/systemd/system/miniship-probe.service"
in_box systemctl daemon-reload
in_box systemctl start miniship-probe
seen=$(in_box journalctl -u miniship-probe -o cat --no-pager)
for want in "refused /opt/miniship/probe" "refused /etc/miniship/probe" "refused /usr/probe" \
    "refused /var/probe" "refused /root/probe" "refused /home/probe" "refused env-file" \
    "writable /var/lib/miniship/probe" "writable /tmp/probe" "CapEff:	0000000000000000" \
    "NoNewPrivs:	1" "Seccomp:	2"; do
    echo "$seen" | grep -qF "$want" || fail "sandbox: wanted '$want' in: $seen"
done
! in_box test -e /tmp/miniship-probe-tmp || fail "the unit's /tmp is the machine's"
ok "sandbox: writes only its state directory and its own /tmp, cannot read the env file, no capabilities, no new privileges, seccomp on"
echo "$seen" | grep -E '^(refused|writable|uid|devices|processes)'

# a graceful stop: SIGTERM, its own log line, exit 0
in_box systemctl stop miniship
status=$(in_box systemctl show miniship -p Result -p ExecMainCode -p ExecMainStatus --value | tr '\n' ' ')
[ "$status" = "success 1 0 " ] || fail "systemctl stop: Result, code, status = $status"
in_box journalctl -u miniship -o cat --no-pager _PID="$pid" | grep -q 'SIGTERM: stopping' \
    || fail "no log line of the stop"
ok "systemctl stop: SIGTERM, 'SIGTERM: stopping …' logged, exited 0 (Result=success)"
in_box journalctl -u miniship -o short-iso --no-pager -n 6

in_box systemctl start miniship
pid2=$(in_box systemctl show miniship -p MainPID --value)
in_box systemctl restart miniship
pid3=$(in_box systemctl show miniship -p MainPID --value)
[ "$pid2" != "$pid3" ] && [ "$(in_box systemctl is-active miniship)" = active ] || fail "restart"
i=0
until [ "$(probe healthz)" = 200 ]; do
    i=$((i + 1)); [ $i -lt 60 ] || fail "/healthz never answered after the restart"; sleep 0.5
done
[ "$(in_box systemctl show miniship -p NRestarts --value)" = 0 ] || fail "systemd restarted it on failure"
ok "systemctl restart: main PID $pid2 -> $pid3, /healthz 200, no restart on failure"

score=$(in_box systemd-analyze security miniship --no-pager | tail -1)
ok "systemd-analyze security miniship: $score"
in_box systemctl stop miniship
echo "all checks passed"
