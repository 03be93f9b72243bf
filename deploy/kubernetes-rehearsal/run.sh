#!/bin/bash
# The Kubernetes rehearsal: deploy/kubernetes/ applied, as docs/deploy.md says, to a
# one-node cluster made on this machine, then release, leader, stop and disruption
# checks against it (docs/deploy.md → "What was run"). As root on Debian 12:
#
#     bash deploy/kubernetes-rehearsal/run.sh           # build what is missing, check, tear down
#     KEEP=1 bash deploy/kubernetes-rehearsal/run.sh    # leave the cluster up after
#
# No image registry or Kubernetes download is needed, only Debian's packages: Kubernetes
# 1.20.2 is built from Debian's own source package (`apt-get source kubernetes`, the
# newest Debian carries; ~10 min on 2 cores, once, into $WORK/build), with Debian's Go
# 1.19, etcd 3.4, containerd 1.6, runc and CNI plugins. The pod sandbox ("pause") image
# is compiled from that source; the miniship image is the one podman has as $IMAGE
# (docs/deploy.md → The image), exported into containerd. PostgreSQL runs on this machine
# (your database would too, outside the cluster); so do the platform emulators and a fake
# Slack Web API (the repository's .venv: `make test` makes it). Cluster DNS is not set
# up, so the pods reach those three by this machine's address.
#
# Each check prints "ok: …"; the first that fails prints "FAILED: …" and exits 1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/var/tmp/miniship-k8s}
IMAGE=${IMAGE:-registry.example.com/miniship:0.1.0}  # the name miniship.yaml uses
K8S=$WORK/build/kubernetes/_output/bin
RUN=$WORK/run  # everything of one run: removed at the start of the next
export KUBECONFIG=$RUN/conf/admin.conf PATH=$K8S:$PATH

fail() { echo "FAILED: $*"; exit 1; }
ok() { echo "ok: $*"; }
say() { echo "-- $*"; }
wait_for() {  # wait_for SECONDS WHAT 'CONDITION': until the shell code CONDITION succeeds
    local until=$((SECONDS + $1)) what=$2
    until eval "$3" >/dev/null 2>&1; do
        [ $SECONDS -lt $until ] || fail "$what (waited)"
        sleep 1
    done
}

[ "$(id -u)" = 0 ] || fail "run it as root (kubelet, containerd, iptables)"
[ -x "$REPO/.venv/bin/python" ] || fail "no $REPO/.venv: run make test first"
podman image exists "$IMAGE" \
    || fail "podman has no $IMAGE: podman build -f deploy/Dockerfile -t $IMAGE ."

# -- Kubernetes from Debian's source package ------------------------------------------------
say "packages"
if ! apt-get -qq source --print-uris kubernetes >/dev/null 2>&1; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        >/etc/apt/sources.list.d/miniship-k8s-src.sources
    apt-get -qq update
fi
DEBIAN_FRONTEND=noninteractive apt-get -qq install -y golang-1.19-go etcd-server containerd \
    containernetworking-plugins iptables conntrack rsync jq buildah gcc libc6-dev >/dev/null
if [ ! -x "$K8S/kubelet" ] || [ ! -x "$K8S/kube-proxy" ]; then
    say "building Kubernetes from Debian's source package (once)"
    rm -rf "$WORK/build" && mkdir -p "$WORK/build" && cd "$WORK/build"
    apt-get -qq source --download-only kubernetes
    tar -xzf kubernetes_*.orig.tar.gz && mv kubernetes-*/ kubernetes
    (cd kubernetes && PATH=/usr/lib/go-1.19/bin:$PATH HOME=$WORK/build CGO_ENABLED=0 \
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler \
            cmd/kubelet cmd/kube-proxy cmd/kubeadm cmd/kubectl" >"$WORK/build/make.log" 2>&1) \
        || fail "building Kubernetes: see $WORK/build/make.log"
fi
ok "Kubernetes $("$K8S/kube-apiserver" --version | cut -d' ' -f2) built from Debian's source package"

# -- the node: containerd, etcd, the control plane, kubelet, kube-proxy ---------------------
CTR="ctr --address $RUN/containerd.sock -n k8s.io"
teardown() {  # every process, container, mount and rule of a run (this one's, or one before)
    if [ -S "$RUN/containerd.sock" ]; then
        pkill -f "$RUN/conf/kubelet.conf" || true  # no restarts while the containers go
        for task in $($CTR task ls -q 2>/dev/null); do
            $CTR task kill -s SIGKILL "$task" >/dev/null 2>&1 || true
        done
        sleep 2
    fi
    [ ! -d "$RUN/pg/data" ] || runuser -u postgres -- pg_ctl -D "$RUN/pg/data" stop -m immediate >/dev/null 2>&1 || true
    pkill -f "$RUN/" || true
    pkill -f "$HERE/fake_slack.py" || true
    sleep 2
    { grep -o " $RUN/[^ ]*" /proc/mounts || true; } | sort -r | xargs -r umount -l
    [ ! -x "$K8S/kube-proxy" ] || "$K8S/kube-proxy" --cleanup >/dev/null 2>&1 || true
    ip netns list 2>/dev/null | sed -n 's/^\(cni-[^ ]*\).*/\1/p' | xargs -r -n1 ip netns delete
}
teardown
rm -rf "$RUN" && mkdir -p "$RUN"/{conf,logs,cni}
cd "$RUN"
NODE_IP=$(ip -4 route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p')
NODE=$(hostname)
start() {  # start NAME COMMAND…: in the background, its output in logs/NAME.log
    local name=$1
    shift
    nohup "$@" >"$RUN/logs/$name.log" 2>&1 &
}

cat >"$RUN/containerd.toml" <<EOF
version = 2
root = "$RUN/containerd"
state = "$RUN/containerd-state"
[grpc]
  address = "$RUN/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:rehearsal"
  # a sandbox (or a container in a container) without CAP_SYS_RESOURCE cannot lower
  # oom_score_adj, which a pod sandbox asks for: keep it at the current value or above
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN/cni"
EOF
cat >"$RUN/cni/10-rehearsal.conflist" <<'EOF'
{"cniVersion": "0.4.0", "name": "rehearsal", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.0.0/24"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}},
  {"type": "loopback"}]}
EOF
start containerd containerd --config "$RUN/containerd.toml"
wait_for 30 "containerd answers" '$CTR version'

if ! buildah inspect --type image localhost/pause:rehearsal >/dev/null 2>&1; then
    gcc -Os -static -o "$RUN/pause" "$WORK/build/kubernetes/build/pause/linux/pause.c"
    box=$(buildah from scratch)
    buildah copy "$box" "$RUN/pause" /pause >/dev/null
    buildah config --entrypoint '["/pause"]' --user 65535:65535 "$box"
    buildah commit -q "$box" localhost/pause:rehearsal >/dev/null
    buildah rm "$box" >/dev/null
fi
for image in localhost/pause:rehearsal "$IMAGE"; do
    podman save --format docker-archive -o "$RUN/image.tar" "$image" >/dev/null 2>&1
    $CTR images import "$RUN/image.tar" >/dev/null
    rm "$RUN/image.tar"
done
ok "containerd $(containerd --version | cut -d' ' -f3) has the pause image and $IMAGE"

start etcd etcd --data-dir "$RUN/etcd" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380
PKI=$RUN/pki
kubeadm init phase certs all --cert-dir "$PKI" --apiserver-advertise-address "$NODE_IP" \
    --kubernetes-version v1.20.2 >/dev/null 2>&1 || fail "kubeadm init phase certs all"
for conf in admin controller-manager scheduler kubelet; do
    node=()
    [ $conf != kubelet ] || node=(--node-name "$NODE")
    kubeadm init phase kubeconfig "$conf" --cert-dir "$PKI" --kubeconfig-dir "$RUN/conf" \
        --apiserver-advertise-address "$NODE_IP" --kubernetes-version v1.20.2 "${node[@]}" \
        >/dev/null 2>&1 || fail "kubeadm init phase kubeconfig $conf"
done
wait_for 30 "etcd answers" 'curl -sf http://127.0.0.1:2379/health'
start kube-apiserver kube-apiserver --advertise-address="$NODE_IP" --secure-port=6443 \
    --etcd-servers=http://127.0.0.1:2379 --service-cluster-ip-range=10.96.0.0/16 \
    --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --feature-gates=TTLAfterFinished=true
wait_for 60 "the API server is ready" 'kubectl get --raw /readyz'
for part in controller-manager scheduler; do
    conf=$RUN/conf/$part.conf
    extra=()
    [ $part = scheduler ] || extra=(--service-account-private-key-file="$PKI/sa.key"
        --root-ca-file="$PKI/ca.crt" --cluster-signing-cert-file="$PKI/ca.crt"
        --cluster-signing-key-file="$PKI/ca.key" --use-service-account-credentials=true
        --feature-gates=TTLAfterFinished=true)
    start kube-$part kube-$part --kubeconfig="$conf" --authentication-kubeconfig="$conf" \
        --authorization-kubeconfig="$conf" --leader-elect=false --bind-address=127.0.0.1 \
        "${extra[@]}"
done
cat >"$RUN/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication: {anonymous: {enabled: false}, webhook: {enabled: true}, x509: {clientCAFile: $PKI/ca.crt}}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failSwapOn: false
featureGates: {TTLAfterFinished: true}
EOF
start kubelet kubelet --kubeconfig="$RUN/conf/kubelet.conf" --config="$RUN/kubelet.yaml" \
    --container-runtime=remote --container-runtime-endpoint="unix://$RUN/containerd.sock" \
    --root-dir="$RUN/kubelet" --node-ip="$NODE_IP" --hostname-override="$NODE"
start kube-proxy kube-proxy --kubeconfig="$RUN/conf/admin.conf" --cluster-cidr=10.244.0.0/16 \
    --hostname-override="$NODE" --proxy-mode=iptables
wait_for 90 "the node is Ready" 'kubectl wait --for=condition=Ready "node/$NODE" --timeout=1s'
ok "node $NODE Ready ($(kubectl get node "$NODE" -o jsonpath='{.status.nodeInfo.containerRuntimeVersion}'))"

# -- outside the cluster: PostgreSQL, the platform emulators, a fake Slack ---------------------
install -d -o postgres "$RUN/pg"
runuser -u postgres -- initdb -D "$RUN/pg/data" -A trust -U postgres >/dev/null
echo "host miniship miniship 10.244.0.0/16 scram-sha-256" >>"$RUN/pg/data/pg_hba.conf"
runuser -u postgres -- pg_ctl -D "$RUN/pg/data" -l "$RUN/pg/postgres.log" -w \
    -o "-c listen_addresses='*' -p 5433 -k $RUN/pg" start >/dev/null
PGPASS=$(openssl rand -hex 16)
psql -q -h 127.0.0.1 -p 5433 -U postgres \
    -c "CREATE ROLE miniship LOGIN PASSWORD '$PGPASS'" -c "CREATE DATABASE miniship OWNER miniship"
(cd "$REPO" && MINISHIP_CONFIG="$REPO/miniship.toml" MINISHIP_EMULATOR_REVIEW_SECONDS=20 \
    MINISHIP_EMULATOR_STATE="$RUN/emulators" \
    start emulators .venv/bin/miniship emulators --host 0.0.0.0 --port 8710 \
        --url "http://$NODE_IP:8710" --env-file "$RUN/emulators.env")
start fake-slack "$REPO/.venv/bin/python" "$HERE/fake_slack.py" 0.0.0.0 8720
wait_for 60 "the emulators wrote their credentials" 'test -s "$RUN/emulators.env"'
ok "PostgreSQL 5433, emulators 8710 and a fake Slack 8720 on $NODE_IP"

# -- docs/deploy.md → Kubernetes, in its order ------------------------------------------------
pod_ips() {  # the running replicas, "NAME IP" a line
    kubectl get pods -l app.kubernetes.io/name=miniship --field-selector=status.phase=Running \
        -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.podIP}{"\n"}{end}'
}
endpoints() { kubectl get endpoints miniship -o jsonpath='{.subsets[0].addresses[*].ip}'; }
set -a
. "$RUN/emulators.env"
set +a
from_env() { for key in "$@"; do printf -- '--from-literal=%s=%s\n' "$key" "${!key}"; done; }
MINISHIP_DATABASE_URL="postgresql://miniship:$PGPASS@$NODE_IP:5433/miniship"
MINISHIP_SECRET_KEY=$("$REPO/.venv/bin/python" -c \
    'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')
SLACK_BOT_TOKEN=xoxb-rehearsal SLACK_SIGNING_SECRET=$(openssl rand -hex 16)
mapfile -t secret < <(from_env $(sed -n 's/^  \([A-Z_]*\): .*/\1/p' "$REPO/deploy/kubernetes/secret.example.yaml"))
kubectl create secret generic miniship-secrets "${secret[@]}" >/dev/null
# the rehearsal's own: where the emulators and the fake Slack are, and the demo app's tokens
SLACK_API_URL="http://$NODE_IP:8720/api/" MINISHIP_WATCH_SECONDS=5
mapfile -t rehearsal < <(from_env SLACK_API_URL MINISHIP_WATCH_SECONDS WECHAT_API_BASE \
    WECHAT_AUTHORIZE_PAGE_BASE WECHAT_COMPONENT_VERIFY_TICKET ALIPAY_GATEWAY \
    ALIPAY_AUTHORIZE_PAGE MINISHIP_DEMO_WECHAT_REFRESH_TOKEN \
    MINISHIP_DEMO_ALIPAY_APP_AUTH_TOKEN MINISHIP_DEMO_ALIPAY_APP_REFRESH_TOKEN)
kubectl create secret generic miniship-rehearsal "${rehearsal[@]}" >/dev/null
ok "Secret miniship-secrets with every key of secret.example.yaml"

kubectl delete job miniship-migrate --ignore-not-found >/dev/null
kubectl apply -f "$REPO/deploy/kubernetes/migrate-job.yaml" >/dev/null
kubectl wait --for=condition=complete job/miniship-migrate --timeout=180s >/dev/null \
    || fail "the migrate Job: $(kubectl logs job/miniship-migrate | tail -3)"
ok "Job miniship-migrate: $(kubectl logs job/miniship-migrate | tail -1)"

if kubectl api-versions | grep -qx policy/v1; then
    kubectl apply -f "$REPO/deploy/kubernetes/miniship.yaml" >/dev/null
    ok "kubectl apply -f deploy/kubernetes/miniship.yaml"
else  # Kubernetes before 1.21: the same PodDisruptionBudget in policy/v1beta1
    applied=$(kubectl apply -f "$REPO/deploy/kubernetes/miniship.yaml" 2>&1) || true
    grep -q 'no matches for kind "PodDisruptionBudget" in version "policy/v1"' <<<"$applied" \
        || fail "kubectl apply -f deploy/kubernetes/miniship.yaml: $applied"
    sed -n '/^kind: PodDisruptionBudget/,$p' "$REPO/deploy/kubernetes/miniship.yaml" \
        | sed '1i apiVersion: policy/v1beta1' | kubectl apply -f - >/dev/null
    ok "kubectl apply -f deploy/kubernetes/miniship.yaml (its PodDisruptionBudget as policy/v1beta1: Kubernetes $(kubectl version --short | sed -n 's/Server Version: //p') has no policy/v1)"
fi
wait_for 120 "both replicas running" '[ "$(pod_ips | wc -l)" = 2 ]'
sleep 15  # a readiness probe's period and more: Slack (the real one) is out of reach
pods=$(kubectl get pods -l app.kubernetes.io/name=miniship -o jsonpath='{range .items[*]}{.status.containerStatuses[0].ready}{" "}{.status.containerStatuses[0].restartCount}{"\n"}{end}')
[ "$(echo "$pods" | sort -u)" = "false 0" ] || fail "replicas as shipped: $pods"
ok "both replicas as shipped: running, not restarted, not ready (Slack out of reach)"

# the rehearsal: the demo app and the emulators' credentials, a rolling update
kubectl create configmap miniship-config --from-file=miniship.toml="$REPO/deploy/rehearsal.toml" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl set env deployment/miniship --from=secret/miniship-rehearsal >/dev/null
kubectl rollout status deployment/miniship --timeout=180s >/dev/null || fail "the rolling update"
wait_for 60 "two endpoints behind Service miniship" '[ "$(endpoints | wc -w)" = 2 ]'
ok "rolling update done; both replicas ready; Service miniship has both as endpoints"

leaders() {  # the pods whose /readyz says they lead, one name a line
    pod_ips | while read -r name ip; do
        [ "$(curl -s -m 3 "http://$ip:3000/readyz" | jq -r .leader)" = true ] && echo "$name"
    done || true
}
wait_for 30 "one leader" '[ "$(leaders | wc -l)" = 1 ]'
ok "exactly one replica leads: $(leaders)"

# -- a release through the Service, with the CI API ----------------------------------------
SVC=http://$(kubectl get svc miniship -o jsonpath='{.spec.clusterIP}')
TOKEN=$(kubectl exec deploy/miniship -- miniship token create ci-rehearsal --role release,publish \
    --apps all | grep -o 'msp_[A-Za-z0-9_-]*') || fail "miniship token create in a pod"
api() {  # api METHOD PATH [JSON]: the answer's JSON; on an error status, said on stderr
    local answer
    answer=$(curl -sS --fail-with-body -X "$1" "$SVC/api/v1/apps/demo/releases$2" \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' ${3:+-d "$3"}) \
        || { echo "$1 $2: $answer" >&2; return 1; }
    echo "$answer"
}
states() { api GET /1.0.0 | jq -r '[.platforms[].state] | unique | join(",")'; }
api POST "" '{"version": "1.0.0", "notes": "Kubernetes rehearsal"}' >/dev/null || fail "upload"
api POST /1.0.0/submit '{}' >/dev/null || fail "submit"
wait_for 90 "both platforms approve" '[ "$(states)" = approved ]'
ok "uploaded, submitted and approved on both platforms through the Service"

# a timed publish, and the leader killed (SIGKILL) ten seconds before it is due
due=$(( ($(date +%s) / 60 + 2) * 60 ))
at=$(TZ=Asia/Shanghai date -d "@$due" +%H:%M)
[ "$(api POST /1.0.0/publish "{\"when\": \"at $at\"}" | jq -r .outcome)" = scheduled ] \
    || fail "the timed publish was not planned"
while [ "$(date +%s)" -lt $((due - 10)) ]; do sleep 1; done
old=$(leaders)
container=$(kubectl get pod "$old" -o jsonpath='{.status.containerStatuses[0].containerID}')
pid=$($CTR task ls | awk -v id="${container#containerd://}" '$1 == id {print $2}')
killed=$(date +%s)
kill -9 "$pid"
# the other replica, or the killed one restarted by the kubelet, whichever claims first
wait_for 20 "a replica leads again after the kill" '[ "$(leaders | wc -l)" = 1 ]'
took=$(($(date +%s) - killed))
ok "leader $old killed (SIGKILL); $(leaders) leads ${took} s later"
wait_for 60 "the timed publish" '[ "$(states)" = released ]'
published=$(psql -At -h 127.0.0.1 -p 5433 -U postgres miniship -c "SELECT count(*) FROM event,
    json_array_elements(exchanges) x WHERE action = 'publish'
    AND x->>'api' IN ('POST /wxa/release', 'alipay.open.mini.version.online')")
[ "$published" = 2 ] || fail "publish calls to the platforms: $published, not one each"
late=$(psql -At -h 127.0.0.1 -p 5433 -U postgres miniship -c "SELECT round(extract(epoch FROM
    max(at)) - $due, 1) FROM event WHERE action = 'publish' AND outcome = 'ok'")
ok "the timed publish went out once on each platform, ${late} s after its minute ($at Asia/Shanghai)"

# -- graceful stop, probes, the pod's sandbox, the disruption budget ------------------------
name=$(leaders)
(kubectl logs -f "$name" >"$RUN/logs/stopped-pod.log" 2>&1 &)
sleep 1
kubectl delete pod "$name" --wait=true >/dev/null
grep -q '"message": "stopped cleanly"' "$RUN/logs/stopped-pod.log" \
    || fail "the deleted pod did not stop cleanly: $(tail -3 "$RUN/logs/stopped-pod.log")"
wait_for 30 "a leader after the delete" '[ "$(leaders | wc -l)" = 1 ]'
ok "kubectl delete pod (SIGTERM) of the leader: \"stopped cleanly\"; $(leaders) leads"

some=$(pod_ips | head -1 | cut -d' ' -f1)
kubectl exec "$some" -- python3 -c "import os, signal; os.kill(1, signal.SIGTERM)" || true
last_exit() { kubectl get pod "$some" -o jsonpath='{.status.containerStatuses[0].lastState.terminated.exitCode}'; }
wait_for 40 "the container restarted after SIGTERM" '[ -n "$(last_exit)" ]'
code=$(last_exit)
[ "$code" = 0 ] || fail "SIGTERM: exit code $code"
ok "SIGTERM to miniship in $some: exit code 0, restarted by the kubelet"

sandbox=$(kubectl exec deploy/miniship -- python3 -c "
import os
status = dict(line.split(':', 1) for line in open('/proc/1/status'))
def writable(path):
    try:
        open(os.path.join(path, '.probe'), 'w').close()
        os.remove(os.path.join(path, '.probe'))
        return 'rw'
    except OSError:
        return 'ro'
print(os.getuid(), status['Seccomp'].strip(), status['NoNewPrivs'].strip(),
      int(status['CapEff'], 16), writable('/'), writable('/opt/miniship'),
      writable('/tmp'), writable('/srv/miniship/var'),
      os.path.exists('/var/run/secrets/kubernetes.io/serviceaccount'))")
[ "$sandbox" = "10001 2 1 0 ro ro rw rw False" ] || fail "the pod's sandbox: $sandbox"
ok "in the pod: uid 10001, seccomp filter, no new privileges, no capabilities, root and /opt read-only, /tmp and var/ writable, no service-account token"

kubectl drain "$NODE" --ignore-daemonsets --delete-emptydir-data \
    --pod-selector=app.kubernetes.io/name=miniship --timeout=20s >"$RUN/logs/drain.log" 2>&1 || true
kubectl uncordon "$NODE" >/dev/null
grep -q "would violate the pod's disruption budget" "$RUN/logs/drain.log" \
    || fail "draining the node: $(tail -3 "$RUN/logs/drain.log")"
[ "$(grep -c 'evicted$' "$RUN/logs/drain.log")" = 1 ] || fail "drain evicted $(grep -c 'evicted$' "$RUN/logs/drain.log") pods"
kubectl rollout status deployment/miniship --timeout=120s >/dev/null
ok "kubectl drain evicted one replica; the PodDisruptionBudget kept the other; both back after uncordon"

if [ -z "${KEEP:-}" ]; then
    teardown
    ok "torn down (KEEP=1 leaves it up)"
else
    ok "left up: KUBECONFIG=$KUBECONFIG PATH=$K8S:\$PATH kubectl get pods"
fi
echo "all checks passed"
