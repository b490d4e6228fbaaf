# tests/mpi: mpi_pool over real MPI jobs (included by tests/CMakeLists.txt
# when coexec::mpi is built).
#
# Each TEST_CASE of test_mpi_pool is one CTest test that runs as an MPI job of
# 3 ranks (rank 0 runs Catch2, ranks 1 and 2 serve) through mpi_launch.sh.
# The Open MPI settings come from the tests themselves, not from the user:
# running as root (CI) needs the two OMPI_ALLOW_RUN_AS_ROOT variables, and
# the ob1 messaging layer starts 0.2 s faster than the default probe.
set(COEXEC_MPI_TEST_ENV
    "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1;OMPI_MCA_pml=ob1;OMPI_MCA_btl=self,vader,tcp")

# The start-up check's judgement, in one process (no MPI job needed).
coexec_add_test(test_mpi_handshake SOURCES mpi/test_mpi_handshake.cpp LIBS coexec::mpi INTERNAL)

# A function in a shared library of its own: found across ranks by build-id.
add_library(coexec_mpi_test_lib SHARED mpi/mpi_test_lib.cpp)
coexec_target_options(coexec_mpi_test_lib)

# Catch2's own implementation lives in the main's translation unit: like
# coexec_test_main, it is built without our warning flags (GCC 12 warns inside
# <regex> at -O2 with sanitizers).
add_library(coexec_mpi_test_main OBJECT mpi/mpi_test_main.cpp)
target_link_libraries(coexec_mpi_test_main PUBLIC coexec::mpi Catch2::Catch2)
add_executable(test_mpi_pool
    mpi/test_mpi_pool.cpp mpi/test_mpi_pool_faults.cpp mpi/test_mpi_two_hosts.cpp)
target_link_libraries(test_mpi_pool PRIVATE
    coexec_mpi_test_main coexec::mpi coexec_mpi_test_lib Catch2::Catch2)
coexec_target_options(test_mpi_pool)
target_include_directories(test_mpi_pool PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/support)
set_target_properties(test_mpi_pool PROPERTIES CROSSCOMPILING_EMULATOR
    "${CMAKE_CURRENT_SOURCE_DIR}/mpi/mpi_launch.sh;${MPIEXEC_EXECUTABLE};3")
# (The launcher sets the Open MPI environment: catch_discover_tests cannot
# pass a list-valued ENVIRONMENT through.)
catch_discover_tests(test_mpi_pool
    TEST_PREFIX "test_mpi_pool: "
    PROPERTIES TIMEOUT 120 LABELS "mpi")

# The start-up check: a job mixing two programs, or the same program with an
# extra library on one rank, is refused on rank 0 with a message naming the
# difference, and ends (PASS_REGULAR_EXPRESSION: mpirun itself exits non-zero,
# since the refused ranks' serve() returns 1).
add_executable(mpi_mismatch_client mpi/mismatch_client.cpp)
target_link_libraries(mpi_mismatch_client PRIVATE coexec::mpi)
coexec_target_options(mpi_mismatch_client)
add_executable(mpi_other_program mpi/other_program.cpp)
target_link_libraries(mpi_other_program PRIVATE coexec::mpi)
coexec_target_options(mpi_other_program)
set(COEXEC_MPIRUN ${MPIEXEC_EXECUTABLE} --oversubscribe --bind-to none)

add_test(NAME "mpi: a job mixing two different programs is refused naming the program"
    COMMAND ${COEXEC_MPIRUN}
        -n 1 $<TARGET_FILE:mpi_mismatch_client> "every rank must run the same program"
        : -n 2 $<TARGET_FILE:mpi_other_program>)
set_tests_properties("mpi: a job mixing two different programs is refused naming the program"
    PROPERTIES TIMEOUT 60 LABELS "mpi" ENVIRONMENT "${COEXEC_MPI_TEST_ENV}"
    PASS_REGULAR_EXPRESSION "refused as expected: .*mpi_other_program"
    FAIL_REGULAR_EXPRESSION "was not refused|refused, but")

# Any library the program does not load itself will do; zstd is on every
# Debian system (dpkg needs it).
find_library(COEXEC_TEST_EXTRA_LIBRARY NAMES zstd)
if(COEXEC_TEST_EXTRA_LIBRARY)
    get_filename_component(_extra_library "${COEXEC_TEST_EXTRA_LIBRARY}" REALPATH)
    get_filename_component(_extra_name "${_extra_library}" NAME)
    add_test(NAME "mpi: a rank loading an extra library is refused naming the library"
        COMMAND ${COEXEC_MPIRUN}
            -n 1 $<TARGET_FILE:mpi_mismatch_client> "also loads"
            : -n 1 env ASAN_OPTIONS=verify_asan_link_order=0 LD_PRELOAD=${_extra_library}
                $<TARGET_FILE:mpi_mismatch_client> "also loads")
    set_tests_properties("mpi: a rank loading an extra library is refused naming the library"
        PROPERTIES TIMEOUT 60 LABELS "mpi" ENVIRONMENT "${COEXEC_MPI_TEST_ENV}"
        PASS_REGULAR_EXPRESSION "refused as expected: .*${_extra_name}"
        FAIL_REGULAR_EXPRESSION "was not refused|refused, but")
endif()

# Two hosts: two network namespaces joined by a bridge, one rank in each,
# daemons started through an rsh agent that enters the namespace (see the
# script). Skipped, saying why, where namespaces are not allowed.
add_test(NAME "mpi: a job with one rank on each of two hosts runs its tasks across them"
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi/two_hosts.sh ${MPIEXEC_EXECUTABLE}
        $<TARGET_FILE:test_mpi_pool> "two hosts: tasks run on the other host and their results come back")
set_tests_properties("mpi: a job with one rank on each of two hosts runs its tasks across them"
    PROPERTIES TIMEOUT 120 LABELS "mpi" SKIP_RETURN_CODE 77 RUN_SERIAL ON)
