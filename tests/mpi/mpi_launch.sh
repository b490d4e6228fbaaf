#!/usr/bin/env bash
# tests/mpi/mpi_launch.sh <mpiexec> <ranks> <program> [args...]
#
# CTest's launcher for the MPI test programs (their CROSSCOMPILING_EMULATOR):
# runs the program as an MPI job of <ranks> ranks. More ranks than cores is
# the point here, hence --oversubscribe; --bind-to none lets each rank's
# workers use every core. When Catch is only asked to list its tests
# (catch_discover_tests, at build time), no MPI job is needed.
#
# The Open MPI settings are the test's business, not the user's: CI runs as
# root, which Open MPI refuses without the two OMPI_ALLOW_RUN_AS_ROOT
# variables; the ob1 messaging layer starts 0.2 s faster than the default
# probe. (Also set in the tests' ENVIRONMENT; here for running by hand.)
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMPI_MCA_pml=${OMPI_MCA_pml:-ob1}
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader,tcp}
mpiexec=$1
ranks=$2
shift 2
for arg in "$@"; do
    case $arg in
        --list*) exec "$@" ;;
    esac
done
exec "$mpiexec" --oversubscribe --bind-to none -n "$ranks" "$@"
