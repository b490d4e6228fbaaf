#!/usr/bin/env bash
# tests/mpi/two_hosts.sh <mpiexec> <program> [args...]
#
# Runs <program> as an MPI job of two ranks on two "hosts": two network
# namespaces joined by a bridge, each with its own address, so the ranks talk
# over TCP as on two machines. Open MPI starts its daemon on each host through
# an rsh-style agent that enters the namespace (ip netns exec) where a cluster
# would use ssh. Rank 0 lands on the first host, rank 1 on the second; the
# program checks the results (for test_mpi_pool, its "[two_hosts]" case).
# Everything is torn down on exit, whatever happened.
#
# Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2. Where the machine
# does not allow network namespaces (a container, no root), prints a SKIP line
# and exits 77, which CTest reports as skipped (SKIP_RETURN_CODE).
set -uo pipefail

mpiexec=$1
shift

skip() {
    echo "SKIP: two_hosts: $*"
    exit 77
}

command -v ip >/dev/null 2>&1 || skip "iproute2's ip is not installed (Debian: apt-get install iproute2)"
[[ $(id -u) -eq 0 ]] || skip "needs root to make network namespaces (CI runs it as root)"

tag=$$
ns_a=coexec_a_$tag
ns_b=coexec_b_$tag
bridge=cxbr$tag
work=$(mktemp -d)

cleanup() {
    ip netns del "$ns_a" 2>/dev/null
    ip netns del "$ns_b" 2>/dev/null
    ip link del "$bridge" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# A /24 nothing on this machine uses yet.
subnet=
for third in $(seq $((tag % 200 + 20)) 250) $(seq 20 $((tag % 200 + 19))); do
    if ! ip -4 addr show | grep -q "inet 10\.213\.$third\."; then
        subnet=10.213.$third
        break
    fi
done
[[ -n $subnet ]] || skip "no free 10.213.x.0/24 subnet for the bridge"

if ! err=$(ip netns add "$ns_a" 2>&1); then
    skip "this machine does not allow network namespaces (ip netns add: $err)"
fi
set -e
ip netns add "$ns_b"
ip link add "$bridge" type bridge
ip addr add "$subnet.1/24" dev "$bridge"
ip link set "$bridge" up
# host a = .2, host b = .3: a veth pair each, one end on the bridge.
n=2
for ns in "$ns_a" "$ns_b"; do
    outside=vh${n}_$tag
    inside=vn${n}_$tag
    ip link add "$outside" type veth peer name "$inside"
    ip link set "$inside" netns "$ns"
    ip link set "$outside" master "$bridge" up
    ip -n "$ns" addr add "$subnet.$n/24" dev "$inside"
    ip -n "$ns" link set "$inside" up
    ip -n "$ns" link set lo up
    echo "$subnet.$n $ns" >>"$work/hosts"
    n=$((n + 1))
done
set +e

# The rsh agent: `agent <host> <command...>` runs the command on that host,
# as `ssh <host> <command...>` would: through a shell, in its namespace.
cat >"$work/agent" <<AGENT
#!/bin/sh
host=\$1
shift
ns=\$(awk -v h="\$host" '\$1 == h { print \$2 }' "$work/hosts")
[ -n "\$ns" ] || { echo "two_hosts agent: unknown host \$host" >&2; exit 1; }
exec ip netns exec "\$ns" /bin/sh -c "\$*"
AGENT
chmod +x "$work/agent"
printf '%s slots=1\n%s slots=1\n' "$subnet.2" "$subnet.3" >"$work/hostfile"

echo "two_hosts: hosts $subnet.2 ($ns_a) and $subnet.3 ($ns_b) on bridge $bridge"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Daemons and ranks talk over the bridge's subnet only (TCP between "hosts"),
# ranks may use every core (--bind-to none). No rtc/hwloc: with nothing to
# bind, all it did was share the topology through a shared-memory mapping
# at an address of its choice, and an orted segfaulted in
# hwloc_shmem_topology_write (2 of 20 runs here, and once in a full CI run).
timeout 90 "$mpiexec" -n 2 --hostfile "$work/hostfile" --map-by node --bind-to none \
    --mca plm_rsh_agent "$work/agent" \
    --mca oob_tcp_if_include "$subnet.0/24" \
    --mca btl self,tcp --mca btl_tcp_if_include "$subnet.0/24" \
    --mca pml ob1 --mca rtc ^hwloc \
    "$@"
status=$?
echo "two_hosts: the job ended with status $status"
exit $status
