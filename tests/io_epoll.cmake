# The coexec::io tests a second time, on the epoll fallback.
#
# test_io runs with whatever backend the process picks (io_uring where the
# kernel allows it); these copies of its [io] test cases run the same
# executable with COEXEC_IO_BACKEND=epoll, so both backends pass the same
# behaviour tests. (TEST_SPEC also gives catch_discover_tests a distinct
# file name for this second registration of the same target.)
if(TARGET test_io)
    catch_discover_tests(test_io
        TEST_SPEC "[io]"
        TEST_PREFIX "test_io[epoll]: "
        TEST_LIST test_io_epoll_TESTS
        PROPERTIES TIMEOUT 120 LABELS "concurrency" ENVIRONMENT "COEXEC_IO_BACKEND=epoll")
endif()
