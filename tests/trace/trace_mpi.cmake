# tests/trace: coexec::trace over mpi_pool (included by tests/CMakeLists.txt
# after mpi/mpi_tests.cmake, whose Catch main, launcher and Open MPI settings
# it shares). Each TEST_CASE is one CTest test run as an MPI job of 3 ranks.
add_executable(test_trace_mpi trace/test_trace_mpi.cpp)
target_link_libraries(test_trace_mpi PRIVATE coexec_mpi_test_main coexec::mpi Catch2::Catch2)
target_include_directories(test_trace_mpi PRIVATE
    ${CMAKE_CURRENT_SOURCE_DIR}/support ${CMAKE_CURRENT_SOURCE_DIR}/mpi)
coexec_target_options(test_trace_mpi)
set_target_properties(test_trace_mpi PROPERTIES CROSSCOMPILING_EMULATOR
    "${CMAKE_CURRENT_SOURCE_DIR}/mpi/mpi_launch.sh;${MPIEXEC_EXECUTABLE};3")
catch_discover_tests(test_trace_mpi
    TEST_PREFIX "test_trace_mpi: "
    PROPERTIES TIMEOUT 120 LABELS "mpi")

# COEXEC_TRACE for every rank of the job (the hidden case above): only rank 0
# records, its file holds the worker ranks.
add_test(NAME "test_trace_mpi: COEXEC_TRACE under mpirun records on rank 0 alone"
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/mpi/mpi_launch.sh ${MPIEXEC_EXECUTABLE} 3
        $<TARGET_FILE:test_trace_mpi> "COEXEC_TRACE under mpirun records on rank 0 alone")
set_tests_properties("test_trace_mpi: COEXEC_TRACE under mpirun records on rank 0 alone"
    PROPERTIES TIMEOUT 120 LABELS "mpi"
    ENVIRONMENT "COEXEC_TRACE=/tmp/coexec_test_trace_mpi_environment_%p.json")
