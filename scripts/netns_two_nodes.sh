#!/usr/bin/env bash
# Two "nodes" on one machine: two network namespaces joined by a veth pair, each with
# its own host name (unshare --uts) and an sshd, and Open MPI's mpirun started in the
# first one with --host over both (2 ranks per node, TCP between the nodes). Runs
# hello, hostname (both nodes must appear), a ring pass, pi, jacobi and an allreduce
# check over shmpi's MPI backend. Needs root, iproute2, openssh-server (see
# scripts/install_mpi.sh); builds into target/mpi. Everything is torn down on exit,
# failure or not: the processes in both namespaces, the namespaces, the temporary keys.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ "$(id -u)" -eq 0 ] || { echo "netns_two_nodes.sh: needs root"; exit 1; }

export MPICC=${MPICC:-mpicc.openmpi}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/mpi}
cargo build --quiet --features mpi --examples
cargo test --quiet --features mpi --test mpi_p2p --test mpi_collectives --no-run
EX=$ROOT/$CARGO_TARGET_DIR/debug/examples
P2P=$(ls -t "$ROOT/$CARGO_TARGET_DIR"/debug/deps/mpi_p2p-* | grep -v '\.d$' | head -1)
COLL=$(ls -t "$ROOT/$CARGO_TARGET_DIR"/debug/deps/mpi_collectives-* | grep -v '\.d$' | head -1)

TAG=shmpi$$
N1=${TAG}a N2=${TAG}b
TMP=$(mktemp -d /tmp/shmpi-netns.XXXXXX)
cleanup() {
    for ns in "$N1" "$N2"; do
        if ip netns list | grep -qw "$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

ip netns add "$N1"
ip netns add "$N2"
ip link add "v$TAG" type veth peer name "w$TAG"
ip link set "v$TAG" netns "$N1"
ip link set "w$TAG" netns "$N2"
ip -n "$N1" addr add 10.77.0.1/24 dev "v$TAG"
ip -n "$N2" addr add 10.77.0.2/24 dev "w$TAG"
for ns in "$N1" "$N2"; do
    ip -n "$ns" link set lo up
done
ip -n "$N1" link set "v$TAG" up
ip -n "$N2" link set "w$TAG" up

# sshd in each namespace, on port 2222, with keys of this run only.
ssh-keygen -q -t ed25519 -N '' -f "$TMP/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/id"
cp "$TMP/id.pub" "$TMP/authorized_keys"
chmod 600 "$TMP/authorized_keys"
cat > "$TMP/sshd_config" <<CFG
Port 2222
HostKey $TMP/host_key
AuthorizedKeysFile $TMP/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
AcceptEnv OMPI_* SHMPI_*
CFG
mkdir -p /run/sshd
ip netns exec "$N1" unshare --uts sh -c "hostname node1; exec /usr/sbin/sshd -D -e -f $TMP/sshd_config" 2>"$TMP/sshd1.log" &
ip netns exec "$N2" unshare --uts sh -c "hostname node2; exec /usr/sbin/sshd -D -e -f $TMP/sshd_config" 2>"$TMP/sshd2.log" &
SSH="ssh -i $TMP/id -p 2222 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes"
for i in $(seq 50); do
    ip netns exec "$N1" $SSH 10.77.0.2 true 2>/dev/null && break
    sleep 0.2
done
ip netns exec "$N1" $SSH 10.77.0.2 hostname | grep -qx node2

# mpirun in the first namespace, with the first node's host name.
run() {
    local what=$1
    shift
    echo "-- $what"
    timeout 120 ip netns exec "$N1" unshare --uts sh -c 'hostname node1; exec "$@"' sh \
        mpirun --allow-run-as-root --host 10.77.0.1:2,10.77.0.2:2 -n 4 \
        --mca plm_rsh_agent "$SSH" --bind-to none --mca mpi_yield_when_idle 1 \
        --mca btl self,vader,tcp --mca btl_tcp_if_include 10.77.0.0/24 \
        --mca oob_tcp_if_include 10.77.0.0/24 \
        -x OMPI_ALLOW_RUN_AS_ROOT=1 -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$@"
}
out=$(run hostname hostname)
echo "$out"
echo "$out" | grep -qx node1 && echo "$out" | grep -qx node2
out=$(run hello "$EX/hello")
echo "$out"
[ "$(echo "$out" | grep -c 'in group of 4 processes')" -eq 4 ]
run "ring pass (8 MiB to the right, sendrecv)" -x SHMPI_TEST_CHILD=head_to_head_large_sends_do_not_deadlock \
    "$P2P" head_to_head_large_sends_do_not_deadlock --exact --nocapture --test-threads=1 --quiet
run "every pair, objects and slices" -x SHMPI_TEST_CHILD=objects_and_slices_travel_between_every_pair \
    "$P2P" objects_and_slices_travel_between_every_pair --exact --nocapture --test-threads=1 --quiet
out=$(run pi "$EX/pi")
echo "$out"
echo "$out" | grep -q 'pi ~= 3.14159'
out=$(run jacobi "$EX/jacobi")
echo "$out"
echo "$out" | grep -q 'matches the serial run'
run "allreduce and every collective against serial references" \
    -x SHMPI_TEST_CHILD=slice_collectives_match_serial_references \
    "$COLL" slice_collectives_match_serial_references --exact --nocapture --test-threads=1 --quiet
echo "netns_two_nodes.sh: all passed on two nodes"
