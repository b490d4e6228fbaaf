// tests/mpi/mpi_test_lib.cpp — a shared library for the test that functions
// living in shared libraries (not the program) are found on other ranks.
long mpi_test_lib_triple(long x) {
    return 3 * x;
}
